//! Conversions shared by the request and response codecs: versions, byte vectors, tie rules,
//! table settings, source settings, and the finishing and verifying of a frame. Everything that touches the
//! flatbuffers types lives in this module and its two users; none of it is public.

use crate::error::{MessageError, WireError};
use crate::frame::FrameLimits;
use crate::generated as fb;
use crate::types::{Origin, OriginKind, TableInfo, TableSettings, TieRule, Ts, VersionId};
use flatbuffers::{FlatBufferBuilder, Follow, ForwardsUOffset, Vector, Verifiable, WIPOffset};

/// One flatbuffers builder reused from frame to frame, for the request and response encoders:
/// no allocation per frame once it has grown to fit the frames it makes. A builder grown past
/// [`ReusedBuilder::KEEP_BYTES`] by a large frame is dropped after it.
#[derive(Default)]
pub(crate) struct ReusedBuilder {
    fbb: FlatBufferBuilder<'static>,
}

impl ReusedBuilder {
    /// The largest frame after which the builder is kept for the next one.
    pub(crate) const KEEP_BYTES: usize = 1 << 20;

    /// Builds a frame with `build` (which resets the builder first) and appends it to `out`.
    pub(crate) fn append(&mut self, out: &mut Vec<u8>, build: impl FnOnce(&mut FlatBufferBuilder<'static>)) {
        build(&mut self.fbb);
        let frame = self.fbb.finished_data();
        out.extend_from_slice(frame);
        if frame.len() > Self::KEEP_BYTES {
            self.fbb = FlatBufferBuilder::new();
        }
    }
}

/// A builder sized for a message carrying about `payload_bytes` of keys and values.
pub(crate) fn builder(payload_bytes: usize) -> FlatBufferBuilder<'static> {
    FlatBufferBuilder::with_capacity(256usize.saturating_add(payload_bytes.saturating_mul(2)))
}

/// Finishes `root` as a frame: flatbuffers' size-prefixed layout is exactly
/// `u32 little-endian length | flatbuffer`, aligned from the frame's first byte.
pub(crate) fn finish<T>(mut fbb: FlatBufferBuilder<'_>, root: WIPOffset<T>) -> Vec<u8> {
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

/// Checks `frame`'s prefix against the limits and its length, then verifies the flatbuffer with
/// the limits' verifier options. The only way this crate reads a buffer.
pub(crate) fn verify<'a, T>(frame: &'a [u8], limits: &FrameLimits) -> Result<T::Inner, WireError>
where
    T: Follow<'a> + Verifiable + 'a,
{
    let body = limits.body(frame)?;
    let options = limits.verifier_options(body.len());
    Ok(flatbuffers::size_prefixed_root_with_opts::<T>(&options, frame)?)
}

/// An optional byte vector; absent reads as empty.
pub(crate) fn bytes(v: Option<Vector<'_, u8>>) -> Vec<u8> {
    v.map(|v| v.bytes().to_vec()).unwrap_or_default()
}

/// An optional byte vector, keeping absent and empty apart.
pub(crate) fn opt_bytes(v: Option<Vector<'_, u8>>) -> Option<Vec<u8>> {
    v.map(|v| v.bytes().to_vec())
}

/// A byte vector that is present only when non-empty (saves its offset and length).
pub(crate) fn nonempty_bytes<'b>(fbb: &mut FlatBufferBuilder<'b>, b: &[u8]) -> Option<WIPOffset<Vector<'b, u8>>> {
    (!b.is_empty()).then(|| fbb.create_vector(b))
}

pub(crate) fn origin_kind_to_fb(kind: OriginKind) -> fb::OriginKind {
    fb::OriginKind(kind.code())
}

pub(crate) fn origin_kind_from_fb(kind: fb::OriginKind, field: &'static str) -> Result<OriginKind, MessageError> {
    OriginKind::from_code(kind.0).ok_or(MessageError::UnknownEnumValue { field, value: u16::from(kind.0) })
}

pub(crate) fn version_to_fb(v: &VersionId) -> fb::VersionId {
    let origin = fb::Origin::new(origin_kind_to_fb(v.origin.kind), v.origin.source_id, v.origin.seq);
    fb::VersionId::new(v.ts.0, &origin)
}

pub(crate) fn version_from_fb(v: &fb::VersionId, field: &'static str) -> Result<VersionId, MessageError> {
    let o = v.origin();
    let origin = Origin { kind: origin_kind_from_fb(o.kind(), field)?, source_id: o.source_id(), seq: o.seq() };
    Ok(VersionId { ts: Ts(v.ts()), origin })
}

pub(crate) fn tie_rule_to_fb<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    rule: &TieRule,
) -> WIPOffset<Vector<'b, fb::OriginKind>> {
    let kinds: Vec<fb::OriginKind> = rule.iter().map(|k| origin_kind_to_fb(*k)).collect();
    fbb.create_vector(&kinds)
}

/// A tie rule: exactly three known kinds (whether they form a permutation is the server's
/// check). `None` when absent.
pub(crate) fn tie_rule_from_fb(
    v: Option<Vector<'_, fb::OriginKind>>,
    field: &'static str,
) -> Result<Option<TieRule>, MessageError> {
    let Some(v) = v else { return Ok(None) };
    if v.len() != 3 {
        return Err(MessageError::InvalidField { field, reason: "a tie rule names exactly three origin kinds" });
    }
    let mut rule = TableSettings::DEFAULT_TIE_RULE;
    for (slot, kind) in rule.iter_mut().zip(v.iter()) {
        *slot = origin_kind_from_fb(kind, field)?;
    }
    Ok(Some(rule))
}

pub(crate) fn settings_to_fb<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    s: &TableSettings,
) -> WIPOffset<fb::TableSettings<'b>> {
    // The default rule is what an absent one means; leave it out.
    let tie_rule = (s.tie_rule != TableSettings::DEFAULT_TIE_RULE).then(|| tie_rule_to_fb(fbb, &s.tie_rule));
    fb::TableSettings::create(
        fbb,
        &fb::TableSettingsArgs {
            max_versions: s.max_versions,
            version_retention_ms: s.version_retention_ms,
            default_ttl_ms: s.default_ttl_ms,
            tie_rule,
            rollback_window_ms: s.rollback_window_ms,
        },
    )
}

pub(crate) fn settings_from_fb(s: fb::TableSettings<'_>) -> Result<TableSettings, MessageError> {
    Ok(TableSettings {
        max_versions: s.max_versions(),
        version_retention_ms: s.version_retention_ms(),
        default_ttl_ms: s.default_ttl_ms(),
        tie_rule: tie_rule_from_fb(s.tie_rule(), "TableSettings.tie_rule")?.unwrap_or(TableSettings::DEFAULT_TIE_RULE),
        rollback_window_ms: s.rollback_window_ms(),
    })
}

pub(crate) fn table_info_to_fb<'b>(fbb: &mut FlatBufferBuilder<'b>, t: &TableInfo) -> WIPOffset<fb::TableInfo<'b>> {
    let name = fbb.create_string(&t.name);
    let settings = settings_to_fb(fbb, &t.settings);
    fb::TableInfo::create(fbb, &fb::TableInfoArgs { name: Some(name), settings: Some(settings), id: t.id })
}

pub(crate) fn table_info_from_fb(t: fb::TableInfo<'_>) -> Result<TableInfo, MessageError> {
    Ok(TableInfo { name: t.name().to_owned(), settings: settings_from_fb(t.settings())?, id: t.id() })
}

/// A source's Kafka settings, left out when there are none (absent reads as none).
pub(crate) fn source_settings_to_fb<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    settings: &[(String, String)],
) -> Option<WIPOffset<Vector<'b, ForwardsUOffset<fb::SourceSetting<'b>>>>> {
    if settings.is_empty() {
        return None;
    }
    let settings: Vec<_> = settings
        .iter()
        .map(|(key, value)| {
            let key = Some(fbb.create_string(key));
            let value = Some(fbb.create_string(value));
            fb::SourceSetting::create(fbb, &fb::SourceSettingArgs { key, value })
        })
        .collect();
    Some(fbb.create_vector(&settings))
}

/// A source's Kafka settings, in order; absent reads as none.
pub(crate) fn source_settings_from_fb(
    v: Option<Vector<'_, ForwardsUOffset<fb::SourceSetting<'_>>>>,
    limits: &FrameLimits,
    field: &'static str,
) -> Result<Vec<(String, String)>, MessageError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    limits.check_items(v.len(), field)?;
    Ok(v.iter().map(|s| (s.key().to_owned(), s.value().to_owned())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ErrorCode;

    /// The hand-written enums must agree with the schema's numbering.
    #[test]
    fn enums_match_the_schema() {
        for code in fb::ErrorCode::ENUM_VALUES {
            let ours = ErrorCode::from_code(code.0);
            assert_eq!(Some(format!("{ours:?}").as_str()), code.variant_name());
        }
        assert_eq!(fb::ErrorCode::ENUM_VALUES.len(), ErrorCode::NAMED.len());
        for kind in fb::OriginKind::ENUM_VALUES {
            let ours = origin_kind_from_fb(*kind, "test").expect("every schema kind is known");
            assert_eq!(Some(format!("{ours:?}").as_str()), kind.variant_name());
        }
        assert_eq!(fb::OriginKind::ENUM_VALUES.len(), OriginKind::ALL.len());
    }

    /// A frame without `rollback_window_ms` (from a client built before the field) reads as
    /// the default a current client proposes, 24 h; a window of 0 is carried, not left out.
    #[test]
    fn an_absent_rollback_window_reads_as_the_default() {
        assert_eq!(fb::TableSettingsArgs::default().rollback_window_ms, TableSettings::DEFAULT_ROLLBACK_WINDOW_MS);
        let mut fbb = FlatBufferBuilder::new();
        let absent = fb::TableSettings::create(&mut fbb, &fb::TableSettingsArgs::default());
        let none = TableSettings { rollback_window_ms: 0, ..TableSettings::default() };
        let zero = settings_to_fb(&mut fbb, &none);
        let v = fbb.create_vector(&[absent, zero]);
        fbb.finish(v, None);
        let list =
            flatbuffers::root::<Vector<'_, flatbuffers::ForwardsUOffset<fb::TableSettings<'_>>>>(fbb.finished_data())
                .expect("just built");
        assert_eq!(settings_from_fb(list.get(0)).expect("valid"), TableSettings::default());
        assert_eq!(settings_from_fb(list.get(1)).expect("valid"), none);
    }

    #[test]
    fn tie_rule_must_name_three_known_kinds() {
        let mut fbb = FlatBufferBuilder::new();
        let two = fbb.create_vector(&[fb::OriginKind::Bulk, fb::OriginKind::Direct]);
        let unknown = fbb.create_vector(&[fb::OriginKind::Bulk, fb::OriginKind(9), fb::OriginKind::Direct]);
        let s =
            fb::TableSettings::create(&mut fbb, &fb::TableSettingsArgs { tie_rule: Some(two), ..Default::default() });
        let t = fb::TableSettings::create(
            &mut fbb,
            &fb::TableSettingsArgs { tie_rule: Some(unknown), ..Default::default() },
        );
        let v = fbb.create_vector(&[s, t]);
        fbb.finish(v, None);
        let list =
            flatbuffers::root::<Vector<'_, flatbuffers::ForwardsUOffset<fb::TableSettings<'_>>>>(fbb.finished_data())
                .expect("just built");
        assert!(matches!(settings_from_fb(list.get(0)), Err(MessageError::InvalidField { .. })));
        assert!(matches!(settings_from_fb(list.get(1)), Err(MessageError::UnknownEnumValue { value: 9, .. })));
    }
}
