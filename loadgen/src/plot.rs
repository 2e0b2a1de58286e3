//! The latency-percentile plot: latency against percentile, one line per operation, the
//! percentile axis stretched as HdrHistogram's plotter does (each further "9" one step), as SVG
//! and PNG, drawn by `plotters`. Text needs a TrueType font; the system's DejaVu Sans is used.

use crate::tally::Tally;
use crate::workload::Op;
use plotters::prelude::*;
use std::path::Path;

/// Where the font comes from (Debian: fonts-dejavu-core).
const FONT_PATHS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];
/// The deepest percentile drawn: 99.9999%.
const MAX_NINES: f64 = 6.0;
/// Pixels.
const SIZE: (u32, u32) = (960, 600);

/// Each operation's (nines, latency in microseconds) points, where nines = -log10(1 - q).
pub fn series(tally: &Tally) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    Op::ALL
        .iter()
        .filter(|op| !tally.of(**op).is_empty())
        .map(|op| {
            let points = tally
                .of(*op)
                .iter_quantiles(5)
                .map(|step| {
                    let q = step.quantile_iterated_to();
                    let nines = if q >= 1.0 { MAX_NINES } else { (-(1.0 - q).log10()).min(MAX_NINES) };
                    (nines, step.value_iterated_to() as f64 / 1000.0)
                })
                .collect();
            (op.name(), points)
        })
        .collect()
}

/// The percentile a nines value stands for, as an axis label.
fn percentile_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

/// Registers the font once; an error names the package that provides one.
fn ensure_font() -> Result<(), String> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let bytes = FONT_PATHS
            .iter()
            .find_map(|path| std::fs::read(path).ok())
            .ok_or_else(|| format!("no font for plots at {} (Debian: fonts-dejavu-core)", FONT_PATHS.join(" or ")))?;
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, leaked)
            .map_err(|_| "the DejaVu Sans font could not be read".to_owned())
    })
    .clone()
}

/// Draws `tally`'s latency-percentile plot to `stem.svg` and `stem.png`.
///
/// # Errors
///
/// If no font is installed or a file cannot be written.
pub fn write(stem: &Path, title: &str, tally: &Tally) -> Result<(), String> {
    ensure_font()?;
    let series = series(tally);
    let svg = stem.with_extension("svg");
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), title, &series)
        .map_err(|e| format!("drawing {}: {e}", svg.display()))?;
    let png = stem.with_extension("png");
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), title, &series)
        .map_err(|e| format!("drawing {}: {e}", png.display()))?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(&'static str, Vec<(f64, f64)>)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let highest = series.iter().flat_map(|(_, points)| points.iter().map(|(_, us)| *us)).fold(1.0_f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..MAX_NINES, 0.0..highest * 1.05)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .x_label_formatter(&|nines| percentile_label(*nines))
        .x_desc("percentile")
        .y_desc("latency (us)")
        .draw()?;
    for (index, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_labelled_by_their_nines() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
    }

    #[test]
    fn each_operation_is_a_line_ending_at_its_maximum() {
        let mut tally = Tally::new();
        for us in 1..=1000 {
            tally.record(Op::Read, us * 1000);
        }
        tally.record(Op::Update, 5_000);
        let lines = series(&tally);
        assert_eq!(lines.iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["read", "update"]);
        let (last_nines, last_us) = *lines[0].1.last().expect("points");
        assert_eq!(last_nines, MAX_NINES);
        assert!((last_us - 1000.0).abs() < 1.0, "{last_us}");
        assert!(lines[0].1.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotonic");
    }

    #[test]
    fn both_files_are_written() {
        if ensure_font().is_err() {
            // The machine has no font; `write` says so, which the next line checks.
            let dir = std::env::temp_dir();
            assert!(write(&dir.join("never"), "t", &Tally::new()).is_err_and(|e| e.contains("fonts-dejavu-core")));
            return;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut tally = Tally::new();
        for us in 1..=100 {
            tally.record(Op::Read, us * 1000);
        }
        write(&dir.path().join("run-latency"), "run", &tally).expect("drawn");
        let svg = std::fs::read_to_string(dir.path().join("run-latency.svg")).expect("the SVG");
        assert!(
            svg.starts_with("<svg") && svg.contains("read") && svg.contains("99.9%"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        let png = std::fs::read(dir.path().join("run-latency.png")).expect("the PNG");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
