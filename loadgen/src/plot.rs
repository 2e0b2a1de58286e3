//! The latency-percentile plot: latency (log scale) against percentile, one line per curve (an
//! operation, or a server in a comparison), the percentile axis stretched as HdrHistogram's
//! plotter does (each further "9" one step), as SVG and PNG, drawn by `plotters`. Text needs a TrueType font;
//! the system's DejaVu Sans is used. `nacre-bench compare` draws its plots with it too.

use plotters::prelude::*;
use std::path::Path;

/// Where the font comes from (Debian: fonts-dejavu-core).
const FONT_PATHS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];
/// The deepest percentile drawn: 99.9999%.
const MAX_NINES: f64 = 6.0;
/// Pixels.
const SIZE: (u32, u32) = (960, 600);

/// A line of the plot: its label and its (quantile, latency in microseconds) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// A quantile as the plot's horizontal position: -log10(1 - q), capped at [`MAX_NINES`].
fn nines(quantile: f64) -> f64 {
    if quantile >= 1.0 { MAX_NINES } else { (-(1.0 - quantile).log10()).min(MAX_NINES) }
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

/// Draws `curves` to `stem.svg` and `stem.png`.
///
/// # Errors
///
/// If no font is installed or a file cannot be written.
pub fn write(stem: &Path, title: &str, curves: &[Curve]) -> Result<(), String> {
    ensure_font()?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(label, points)| (label.as_str(), points.iter().map(|(q, us)| (nines(*q), *us)).collect()))
        .collect();
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
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let values = || series.iter().flat_map(|(_, points)| points.iter().map(|(_, us)| *us));
    let highest = values().fold(1.0_f64, f64::max);
    // Latencies span decades (a median of tens of microseconds, a stall of a second): log scale.
    let lowest = values().filter(|us| *us > 0.0).fold(highest, f64::min).max(0.1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..MAX_NINES, (lowest * 0.8..highest * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(7)
        .x_label_formatter(&|nines| percentile_label(*nines))
        .x_desc("percentile")
        .y_desc("latency (us, log scale)")
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
    fn quantiles_stretch_by_their_nines() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(nines(1.0), MAX_NINES);
        assert_eq!(nines(0.999_999_999), MAX_NINES);
    }

    #[test]
    fn both_files_are_written() {
        if ensure_font().is_err() {
            // The machine has no font; `write` says so, which the next line checks.
            let dir = std::env::temp_dir();
            assert!(write(&dir.join("never"), "t", &[]).is_err_and(|e| e.contains("fonts-dejavu-core")));
            return;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let curve: Vec<(f64, f64)> = (0..=100).map(|i| (f64::from(i) / 100.0, f64::from(i) * 10.0)).collect();
        write(&dir.path().join("run-latency"), "run", &[("read".to_owned(), curve)]).expect("drawn");
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
