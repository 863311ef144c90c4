//! Reports, rendered only from stored results (`results.jsonl`), deterministically: SVG plots
//! (plotters) and an `index.md` and `index.html` that show every plot and the summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::runner::{Outcome, Record, Status};
use crate::timing::{Part, Timing, TimingsFile};

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

const SIZE: (u32, u32) = (900, 520);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// One rendered figure: its file and what it shows.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File name inside the report folder.
    pub file: String,
    /// A sentence saying how to read it.
    pub caption: String,
}

/// Writes every plot of `records` into `dir`, then `index.md` and `index.html`. Returns the
/// index path.
pub fn render(
    dir: &Path,
    title: &str,
    description: &str,
    records: &[Record],
) -> anyhow::Result<PathBuf> {
    let ok: Vec<(&Record, &Outcome)> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().map(|o| (r, o)))
        .collect();
    let mut figures = Vec::new();
    let mut draw = |figure: Option<Figure>| {
        if let Some(f) = figure {
            figures.push(f);
        }
    };
    let wrap = |name: &str, result: DrawResult<Option<Figure>>| {
        result.map_err(|e| anyhow::anyhow!("drawing {name}: {e}"))
    };
    draw(wrap("loss_curves", loss_curves(dir, &ok))?);
    draw(wrap("comparison", comparison(dir, &ok))?);
    draw(wrap("regime_map", regime_map(dir, &ok))?);
    draw(wrap("accuracy", accuracy(dir, &ok))?);
    draw(wrap("rank", rank_plots(dir, &ok))?);
    draw(wrap("rank_estimators", rank_estimators(dir, &ok))?);
    draw(wrap("rank_cost", rank_cost(dir, &ok))?);
    let timings = TimingsFile::read(dir)?;
    if let Some(t) = &timings {
        draw(wrap("timing", timing_plot(dir, &t.timings))?);
    }
    write_index(dir, title, description, records, &figures, timings.as_ref())
}

/// A scenario: everything about a case but its preconditioner.
fn scenario(r: &Record) -> String {
    let c = &r.case;
    let mut text = format!(
        "{} | {} noise, scale {}",
        c.objective.label,
        c.noise.structure.name(),
        c.noise.scale
    );
    if c.noise.structure.name() == "diagonal" || c.noise.structure.name() == "rotated" {
        let _ = write!(text, ", anisotropy {}", c.noise.anisotropy);
    }
    match c.run.eta {
        Some(eta) => {
            let _ = write!(text, " | η {eta}");
        }
        None => {
            let _ = write!(text, " | η = {}·2/λmax", c.run.eta_fraction);
        }
    }
    text
}

/// The distinct items, in first-seen order (series of a chart, each with a color).
fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// Preconditioner labels in first-seen order.
fn preconditioners(ok: &[(&Record, &Outcome)]) -> Vec<String> {
    distinct(ok.iter().map(|(r, _)| r.case.preconditioner.label.clone()))
}

/// The legend box, the same on every chart.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Tick labels of a scenario axis: 1, 2, … at integer positions only.
fn scenario_tick(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 && *x >= 0.0 {
        format!("{}", x.round() as usize + 1)
    } else {
        String::new()
    }
}

/// Tick labels for log axes: 1e-3, 2.5e-3, …
fn sci(v: &f64) -> String {
    format!("{v:.1e}")
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Log-axis range covering `values` with a margin.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 1e-3..1.0;
    }
    lo / 1.5..hi * 1.5
}

fn finish<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.present()?;
    Ok(())
}

/// Expected loss against steps for the first scenario: each preconditioner's simulation mean
/// (with ±2 SE) against the discrete and continuous closed forms and the stationary value; with
/// a single preconditioner also one run (the first chain) alone — the paper's Figure 1.
fn loss_curves(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    let Some((first, _)) = ok.first() else {
        return Ok(None);
    };
    let chosen: Vec<&(&Record, &Outcome)> = ok
        .iter()
        .filter(|(r, _)| scenario(r) == scenario(first))
        .collect();
    let file = "loss_curves.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = chosen
        .iter()
        .flat_map(|(_, o)| o.trace.last().map(|t| t.step as f64))
        .fold(10.0, f64::max);
    let one_run = chosen.len() == 1;
    // Without step 0, where the excess loss is rounding noise around zero.
    let y = log_range(chosen.iter().flat_map(|(_, o)| {
        o.trace.iter().skip(1).flat_map(move |t| {
            [
                t.mean,
                t.theory_discrete,
                t.theory_continuous,
                if one_run {
                    t.first_chain.unwrap_or(f64::NAN)
                } else {
                    f64::NAN
                },
            ]
        })
    }));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Expected loss against steps: {}", scenario(first)),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((1.0..x_max).log_scale(), y.clone().log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("step k")
        .y_desc("E[f(θ_k)] − f*")
        .y_label_formatter(&sci)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (i, (r, o)) in chosen.iter().enumerate() {
        let c = color(i);
        let label = &r.case.preconditioner.label;
        if one_run {
            let gray = BLACK.mix(0.3);
            chart
                .draw_series(LineSeries::new(
                    trace_points(o)
                        .into_iter()
                        .filter_map(|(k, t)| Some((k, t.first_chain.filter(|v| *v > 0.0)?))),
                    gray,
                ))?
                .label("one run (the first chain)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], gray));
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(1.0, o.theory_discrete), (x_max, o.theory_discrete)],
                2,
                4,
                c.mix(0.7).stroke_width(1),
            ))?
            .label(format!("{label}: stationary value"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.mix(0.7)));
        chart
            .draw_series(LineSeries::new(
                trace_points(o)
                    .into_iter()
                    .map(|(k, t)| (k, t.theory_discrete)),
                c.stroke_width(2),
            ))?
            .label(format!("{label}: theory, discrete"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                trace_points(o)
                    .into_iter()
                    .map(|(k, t)| (k, t.theory_continuous)),
                6,
                4,
                c.stroke_width(1),
            ))?
            .label(format!("{label}: theory, continuous"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
        chart.draw_series(trace_points(o).into_iter().map(|(k, t)| {
            let (lo, hi) = (
                (t.mean - 2.0 * t.std_error).max(y.start),
                t.mean + 2.0 * t.std_error,
            );
            PathElement::new(vec![(k, lo), (k, hi)], c.mix(0.35))
        }))?;
        chart
            .draw_series(
                trace_points(o)
                    .into_iter()
                    .step_by(4)
                    .map(|(k, t)| Circle::new((k, t.mean), 2, c.filled())),
            )?
            .label(format!("{label}: simulation ± 2 SE"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Simulation mean over chains (points, bars ±2 standard errors) against the closed form of the discrete chain (solid), of the SDE (dashed) and the discrete chain's stationary value (dotted); with one preconditioner, one run alone (gray). The gap between solid and dashed is the step-size bias.".into(),
    }))
}

/// The trace without step 0 (log axes), as (step, point).
fn trace_points(o: &Outcome) -> Vec<(f64, &crate::runner::TracePoint)> {
    o.trace
        .iter()
        .filter(|t| t.step > 0)
        .map(|t| (t.step as f64, t))
        .collect()
}

/// Scenarios on the x axis, stationary excess loss on a log y axis: theory (open squares) and
/// simulation (filled dots with ±2 SE) for each preconditioner.
fn comparison(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    if ok.is_empty() {
        return Ok(None);
    }
    let scenarios = scenario_list(ok);
    let labels = preconditioners(ok);
    let file = "comparison.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let y = log_range(
        ok.iter()
            .flat_map(|(_, o)| [o.theory_discrete, o.estimates.excess_loss.mean]),
    );
    let n = scenarios.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Stationary excess loss by scenario and preconditioner",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, y.clone().log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("scenario (numbered as in the table below the plot)")
        .y_desc("E∞[f] − f*")
        .y_label_formatter(&sci)
        .x_labels(n.min(30))
        .x_label_formatter(&scenario_tick)
        .draw()?;
    for (p, label) in labels.iter().enumerate() {
        let c = color(p);
        let offset = (p as f64 - (labels.len() as f64 - 1.0) / 2.0) * 0.12;
        let mine: Vec<(f64, &Outcome)> = ok
            .iter()
            .filter(|(r, _)| &r.case.preconditioner.label == label)
            .map(|(r, o)| {
                (
                    scenarios
                        .iter()
                        .position(|s| *s == scenario(r))
                        .unwrap_or(0) as f64
                        + offset,
                    *o,
                )
            })
            .collect();
        chart
            .draw_series(mine.iter().map(|(x, o)| {
                Rectangle::new(
                    [
                        (x - 0.04, o.theory_discrete * 0.97),
                        (x + 0.04, o.theory_discrete / 0.97),
                    ],
                    c.stroke_width(2),
                )
            }))?
            .label(format!("{label}: theory"))
            .legend(move |(x, y)| {
                Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], c.stroke_width(2))
            });
        chart.draw_series(mine.iter().map(|(x, o)| {
            let e = o.estimates.excess_loss;
            PathElement::new(
                vec![
                    (*x, (e.mean - 2.0 * e.std_error).max(y.start)),
                    (*x, e.mean + 2.0 * e.std_error),
                ],
                c.stroke_width(1),
            )
        }))?;
        chart
            .draw_series(
                mine.iter()
                    .map(|(x, o)| Circle::new((*x, o.estimates.excess_loss.mean), 3, c.filled())),
            )?
            .label(format!("{label}: simulation"))
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, c.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Each scenario (objective, noise structure, step-size rule) with every preconditioner side by side: closed form (open squares) and simulation (dots, ±2 SE). Lower is better.".into(),
    }))
}

fn scenario_list(ok: &[(&Record, &Outcome)]) -> Vec<String> {
    distinct(ok.iter().map(|(r, _)| scenario(r)))
}

/// For each scenario, each preconditioner's stationary loss relative to the best one (1 = wins).
fn regime_map(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    let labels = preconditioners(ok);
    if labels.len() < 2 {
        return Ok(None);
    }
    let scenarios = scenario_list(ok);
    let mut best: BTreeMap<usize, f64> = BTreeMap::new();
    let mut points: Vec<(usize, usize, f64)> = Vec::new();
    for (r, o) in ok {
        let s = scenarios
            .iter()
            .position(|x| *x == scenario(r))
            .unwrap_or(0);
        let p = labels
            .iter()
            .position(|l| *l == r.case.preconditioner.label)
            .unwrap_or(0);
        let entry = best.entry(s).or_insert(f64::MAX);
        *entry = entry.min(o.theory_discrete);
        points.push((s, p, o.theory_discrete));
    }
    let ratios: Vec<(usize, usize, f64)> = points
        .iter()
        .map(|&(s, p, v)| (s, p, v / best[&s]))
        .collect();
    let file = "regime_map.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let top = ratios.iter().map(|r| r.2).fold(2.0, f64::max) * 1.3;
    let n = scenarios.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Which preconditioner wins where: stationary loss relative to the best",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, (0.9..top).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("scenario (numbered as in the table)")
        .y_desc("loss / best loss (theory, discrete)")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .x_labels(n.min(30))
        .x_label_formatter(&scenario_tick)
        .draw()?;
    for (p, label) in labels.iter().enumerate() {
        let c = color(p);
        let mine: Vec<(f64, f64)> = ratios
            .iter()
            .filter(|r| r.1 == p)
            .map(|r| (r.0 as f64, r.2))
            .collect();
        chart
            .draw_series(mine.iter().map(|&(x, v)| {
                Rectangle::new(
                    [
                        (x - 0.35 + 0.7 * p as f64 / labels.len() as f64, 0.9),
                        (x - 0.35 + 0.7 * (p + 1) as f64 / labels.len() as f64, v),
                    ],
                    c.mix(0.8).filled(),
                )
            }))?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x + 4, y - 5), (x + 14, y + 5)], c.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "For each scenario, every preconditioner's stationary excess loss divided by the best one's: the shortest bar (height 1) wins.".into(),
    }))
}

/// z-score and relative error of simulation against the discrete closed form, every case.
fn accuracy(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    if ok.is_empty() {
        return Ok(None);
    }
    let file = "accuracy.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2);
    let n = ok.iter().map(|(r, _)| r.case.index).max().unwrap_or(0) as f64 + 1.0;
    let z_top = ok.iter().map(|(_, o)| o.z_score.abs()).fold(5.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Simulation against the discrete closed form over the window, every case",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n - 0.5, -z_top..z_top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("case")
        .y_desc("z-score")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for bound in [-4.0_f64, -2.0, 2.0, 4.0] {
        chart.draw_series(LineSeries::new(
            [(-0.5, bound), (n - 0.5, bound)],
            BLACK.mix(if bound.abs() > 3.0 { 0.6 } else { 0.25 }),
        ))?;
    }
    chart.draw_series(
        ok.iter()
            .map(|(r, o)| Circle::new((r.case.index as f64, o.z_score), 3, color(0).filled())),
    )?;
    let rel: Vec<f64> = ok.iter().map(|(_, o)| o.relative_error.abs()).collect();
    let mut chart = ChartBuilder::on(&lower)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            -0.5..n - 0.5,
            log_range(rel.iter().copied().chain([1e-4])).log_scale(),
        )?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("case")
        .y_desc("|relative error|")
        .y_label_formatter(&sci)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    chart.draw_series(ok.iter().map(|(r, o)| {
        Circle::new(
            (r.case.index as f64, o.relative_error.abs().max(1e-12)),
            3,
            color(1).filled(),
        )
    }))?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Top: (simulated − theory) / standard error, the theory being the discrete closed form averaged over the averaging window (exact from θ*, equilibrated or not); lines at ±2 and ±4. A correct simulator keeps about 95% of cases within ±2. Bottom: |simulated / theory − 1|, log scale.".into(),
    }))
}

/// Under matched noise: stationary loss / σ² against rank with the r/4 line, and r̂, r̂_c against
/// the true rank.
fn rank_plots(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    // Cases where GΣ = σ²I holds with the σ² the estimates use (not, say, Adam's G under
    // isotropic noise, which matches a σ² a hundred times larger).
    let matched: Vec<&(&Record, &Outcome)> = ok
        .iter()
        .filter(|(_, o)| match (o.matched_sigma2, o.rank_sigma2) {
            (Some(m), Some(r)) => (m / r - 1.0).abs() < 1e-6,
            _ => false,
        })
        .collect();
    if matched.is_empty() {
        return Ok(None);
    }
    let file = "rank.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let truth = |o: &Outcome| o.true_rank.unwrap_or(o.rank) as f64;
    let top = matched
        .iter()
        .flat_map(|(_, o)| [truth(o), o.rank_paper.map_or(0.0, |e| e.mean)])
        .fold(1.0, f64::max)
        * 1.1;
    let ranks = 0.0..top;
    let mut chart = ChartBuilder::on(&left)
        .caption("Matched noise: E∞[f] − f* against rank", ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(ranks.clone(), 0.0..top / 4.0 * 1.2)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("rank(H)")
        .y_desc("(E∞[f] − f*) / σ²")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (ranks.end, ranks.end / 4.0)],
            BLACK,
        ))?
        .label("σ² r / 4")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .draw_series(matched.iter().map(|(_, o)| {
            Circle::new(
                (
                    truth(o),
                    o.estimates.excess_loss.mean / o.rank_sigma2.unwrap_or(1.0),
                ),
                3,
                color(0).filled(),
            )
        }))?
        .label("simulation")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, color(0).filled()));
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    let mut chart = ChartBuilder::on(&right)
        .caption("Rank estimates against the true rank", ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(ranks.clone(), ranks.clone())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("true rank")
        .y_desc("estimate")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(0.0, 0.0), (ranks.end, ranks.end)],
        BLACK.mix(0.5),
    ))?;
    for (i, (name, pick)) in [("paper r̂", 0), ("corrected r̂_c", 1)]
        .into_iter()
        .enumerate()
    {
        let c = color(i + 1);
        chart
            .draw_series(matched.iter().filter_map(|(_, o)| {
                let e = if pick == 0 {
                    o.rank_paper
                } else {
                    o.rank_corrected
                }?;
                Some(Circle::new(
                    (truth(o) + 0.01 * top * i as f64, e.mean),
                    3,
                    c.filled(),
                ))
            }))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Left: under matched noise (GΣ = σ²I) the stationary loss is σ²·rank/4 whatever the spectrum. Right: the paper's estimator r̂ (biased upward by the step size) and the corrected r̂_c against the true rank; the diagonal is exact.".into(),
    }))
}

/// The estimators present in the records, in first-seen order.
fn estimator_names(ok: &[(&Record, &Outcome)]) -> Vec<String> {
    distinct(
        ok.iter()
            .flat_map(|(_, o)| o.rank_estimates.iter().map(|e| e.estimator.clone())),
    )
}

fn truth(o: &Outcome) -> f64 {
    o.true_rank.unwrap_or(o.rank) as f64
}

/// Every estimator's rank against the true rank on log-log axes, bars ± one run's standard
/// deviation — the paper's Figure 2, with the alternatives beside it.
fn rank_estimators(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    let names = estimator_names(ok);
    if names.is_empty() {
        return Ok(None);
    }
    let file = "rank_estimators.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let range = log_range(ok.iter().flat_map(|(_, o)| {
        o.rank_estimates
            .iter()
            .flat_map(|e| [e.rank.mean - e.run_spread, e.rank.mean + e.run_spread])
            .chain([truth(o)])
    }));
    let mut chart = ChartBuilder::on(&root)
        .caption("Estimated against true Hessian rank", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(range.clone().log_scale(), range.clone().log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("true rank")
        .y_desc("estimate")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(range.start, range.start), (range.end, range.end)],
        BLACK.mix(0.5),
    ))?;
    for (i, name) in names.iter().enumerate() {
        let c = color(i);
        // Side by side: each estimator shifted by a few percent along x.
        let shift = 1.0 + 0.03 * (i as f64 - (names.len() as f64 - 1.0) / 2.0);
        let points: Vec<(f64, &crate::rank::RankEstimate)> = ok
            .iter()
            .flat_map(|(_, o)| {
                o.rank_estimates
                    .iter()
                    .filter(|e| e.estimator == *name)
                    .map(move |e| (truth(o) * shift, e))
            })
            .collect();
        chart
            .draw_series(points.iter().map(|(x, e)| {
                ErrorBar::new_vertical(
                    *x,
                    (e.rank.mean - e.run_spread).max(range.start),
                    e.rank.mean,
                    e.rank.mean + e.run_spread,
                    c.filled(),
                    6,
                )
            }))?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Each estimator's rank against the true rank (log-log; the diagonal is exact). Bars: ± the standard deviation of one run (over the chains for the Langevin estimators r̂ and r̂_c; the probe standard error for KPM). The table below gives mean errors, RMSEs and costs.".into(),
    }))
}

/// RMSE against η and against cost, per estimator, when the cases sweep η: how to reach an
/// accuracy sooner.
fn rank_cost(dir: &Path, ok: &[(&Record, &Outcome)]) -> DrawResult<Option<Figure>> {
    let names = estimator_names(ok);
    let etas: std::collections::BTreeSet<u64> = ok.iter().map(|(_, o)| o.eta.to_bits()).collect();
    if names.is_empty() || etas.len() < 2 {
        return Ok(None);
    }
    let file = "rank_cost.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let percent = |o: &Outcome, e: &crate::rank::RankEstimate| 100.0 * e.rmse / truth(o);
    let cost = |e: &crate::rank::RankEstimate| {
        (e.gradient_evaluations + 2 * e.hessian_vector_products) as f64
    };
    let all: Vec<(&Outcome, &crate::rank::RankEstimate)> = ok
        .iter()
        .flat_map(|(_, o)| o.rank_estimates.iter().map(move |e| (*o, e)))
        .filter(|(_, e)| e.estimator != "exact")
        .collect();
    let y = log_range(all.iter().map(|(o, e)| percent(o, e)));
    for (area, by_cost) in [(&left, false), (&right, true)] {
        let x = if by_cost {
            log_range(all.iter().map(|(_, e)| cost(e)))
        } else {
            log_range(all.iter().map(|(o, _)| o.eta))
        };
        let mut chart = ChartBuilder::on(area)
            .caption(
                if by_cost {
                    "RMSE against cost"
                } else {
                    "RMSE against step size"
                },
                ("sans-serif", 15),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.log_scale(), y.clone().log_scale())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(if by_cost {
                "gradient evaluations (+ 2 per Hessian-vector product)"
            } else {
                "η"
            })
            .y_desc("RMSE of one run, % of the rank")
            .x_label_formatter(&sci)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()?;
        for (i, name) in names.iter().enumerate().filter(|(_, n)| *n != "exact") {
            let c = color(i);
            let mut points: Vec<(f64, f64)> = all
                .iter()
                .filter(|(_, e)| e.estimator == *name)
                .map(|(o, e)| (if by_cost { cost(e) } else { o.eta }, percent(o, e)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Left: each estimator's RMSE (one run, % of the true rank) against the step size η. Right: the same against its cost in gradient evaluations (a Hessian-vector product counted as two). r̂ pays a step-size bias that grows with η; r̂_c removes it, so it may take larger steps and fewer of them.".into(),
    }))
}

/// The rank-estimator table: per case and estimator, the mean error, the RMSE of one run and
/// the cost — the paper's Table 1, with costs.
fn rank_table(md: &mut String, records: &[Record]) {
    let rows: Vec<(&Record, &Outcome, &crate::rank::RankEstimate)> = records
        .iter()
        .filter_map(|r| Some((r, r.outcome.as_ref()?)))
        .flat_map(|(r, o)| o.rank_estimates.iter().map(move |e| (r, o, e)))
        .collect();
    if rows.is_empty() {
        return;
    }
    md.push_str("\n## Rank estimators\n\nPer case and estimator: the estimate (mean over runs ± standard error), its mean error and the RMSE of one run in percent of the true rank, the runs behind it, and its cost.\n\n| case | objective | n | true rank | η | estimator | estimate | mean error % | RMSE % | runs | gradient evaluations | Hessian-vector products | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (r, o, e) in rows {
        let t = truth(o);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2e} | {} | {:.2} ± {:.2} | {:+.3} | {:.3} | {} | {:.3e} | {:.3e} | {:.2} |",
            r.case.index,
            r.case.objective.label,
            o.dim,
            t,
            o.eta,
            e.estimator,
            e.rank.mean,
            e.rank.std_error,
            100.0 * (e.rank.mean - t) / t,
            100.0 * e.rmse / t,
            e.runs,
            e.gradient_evaluations as f64,
            e.hessian_vector_products as f64,
            e.seconds
        );
    }
}

/// Time per call against n for each part, one series per plugin the part mostly belongs to (the
/// preconditioner for apply, the objective otherwise; every pair's interval is drawn), with
/// criterion's 95% intervals as error bars.
fn timing_plot(dir: &Path, timings: &[Timing]) -> DrawResult<Option<Figure>> {
    let measured: Vec<(&Timing, crate::timing::Interval)> =
        timings.iter().filter_map(|t| Some((t, t.ns?))).collect();
    if measured.is_empty() {
        return Ok(None);
    }
    let file = "timing.svg";
    let path = dir.join(file);
    let root = SVGBackend::new(&path, (SIZE.0, SIZE.1 * 3 / 2)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 2));
    for (panel, part) in panels.iter().zip(Part::ALL) {
        let of_part: Vec<&(&Timing, crate::timing::Interval)> =
            measured.iter().filter(|(t, _)| t.part == part).collect();
        if of_part.is_empty() {
            continue;
        }
        let x = log_range(of_part.iter().map(|(t, _)| t.dim as f64));
        let y = log_range(of_part.iter().flat_map(|(_, e)| [e.lower, e.upper]));
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{} (ns per call{})",
                    part.name(),
                    if part.per_block() { ", n×m block" } else { "" }
                ),
                ("sans-serif", 15),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(x.log_scale(), y.log_scale())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("n")
            .y_labels(8)
            .y_label_formatter(&sci)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let series = distinct(of_part.iter().map(|(t, _)| t.plugin().to_owned()));
        for (i, name) in series.iter().enumerate() {
            let c = color(i);
            // Pairs that differ only in the other plugin repeat a point: one per n is enough
            // for the line, every interval is drawn.
            let mine: Vec<&&(&Timing, crate::timing::Interval)> =
                of_part.iter().filter(|(t, _)| t.plugin() == name).collect();
            let mut line: Vec<(f64, f64)> = Vec::new();
            for (t, e) in &mine {
                if !line.iter().any(|(n, _)| *n == t.dim as f64) {
                    line.push((t.dim as f64, e.point));
                }
            }
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(line, c))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            chart.draw_series(mine.iter().map(|(t, e)| {
                ErrorBar::new_vertical(t.dim as f64, e.lower, e.point, e.upper, c.filled(), 6)
            }))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    finish(&root)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: "Criterion's timings against the dimension n, per part, per plugin: the objective's batched gradient and the preconditioner's apply on the n×m block of chains, one full step of the block as the simulator runs it, and the closed form. Error bars: 95% confidence intervals. The table below gives them per coordinate per step.".into(),
    }))
}

/// The timing table in Markdown.
fn timing_table(md: &mut String, file: &TimingsFile) {
    let s = &file.settings;
    let _ = write!(
        md,
        "\n## Timings\n\ncriterion: {} samples, {} s warm-up, {} s measurement per benchmark; 95% confidence intervals. Its data are in `criterion/`.\n\n| objective | preconditioner | noise | n | m | part | time per call | ns per coordinate per step |\n|---|---|---|---|---|---|---|---|\n",
        s.samples, s.warm_up, s.measurement
    );
    let interval = |e: crate::timing::Interval| {
        format!(
            "{} [{}, {}]",
            duration(e.point),
            duration(e.lower),
            duration(e.upper)
        )
    };
    for t in &file.timings {
        let time = match (&t.ns, &t.error) {
            (Some(e), _) => interval(*e),
            (None, Some(err)) => format!("not timed: {}", err.replace('|', "/")),
            (None, None) => String::new(),
        };
        let per = t.ns_per_coordinate.map_or(String::new(), |e| {
            format!("{:.3} [{:.3}, {:.3}]", e.point, e.lower, e.upper)
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {time} | {per} |",
            t.objective,
            t.preconditioner,
            t.noise,
            t.dim,
            t.chains,
            t.part.name()
        );
    }
}

/// A duration in ns, in readable units.
pub fn duration(ns: f64) -> String {
    match ns.abs() {
        v if v >= 1e9 => format!("{:.3} s", ns / 1e9),
        v if v >= 1e6 => format!("{:.3} ms", ns / 1e6),
        v if v >= 1e3 => format!("{:.3} µs", ns / 1e3),
        _ => format!("{ns:.1} ns"),
    }
}

fn write_index(
    dir: &Path,
    title: &str,
    description: &str,
    records: &[Record],
    figures: &[Figure],
    timings: Option<&TimingsFile>,
) -> anyhow::Result<PathBuf> {
    let ok: Vec<(&Record, &Outcome)> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().map(|o| (r, o)))
        .collect();
    let failed = records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    let scenarios = scenario_list(&ok);
    let mut md = format!(
        "# {title}\n\n{description}\n\n{} cases: {} ran, {failed} failed.\n\n",
        records.len(),
        ok.len()
    );
    for f in figures {
        let _ = write!(md, "![{}]({})\n\n{}\n\n", f.file, f.file, f.caption);
    }
    md.push_str("## Scenarios\n\n| # | scenario |\n|---|---|\n");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = writeln!(md, "| {} | {} |", i + 1, s.replace('|', "·"));
    }
    md.push_str("\n## Cases\n\n| case | scenario | preconditioner | n | rank | η | theory (discrete) | simulated ± SE | z | r̂ | r̂_c | status |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in records {
        let s = scenario(r);
        let number = scenarios
            .iter()
            .position(|x| *x == s)
            .map_or("–".to_owned(), |i| (i + 1).to_string());
        match &r.outcome {
            Some(o) => {
                let e = o.estimates.excess_loss;
                let est = |v: Option<crate::sim::Estimate>| {
                    v.map_or(String::new(), |e| {
                        format!("{:.2} ± {:.2}", e.mean, e.std_error)
                    })
                };
                let _ = writeln!(
                    md,
                    "| {} | {number} | {} | {} | {} | {:.3e} | {:.4e} | {:.4e} ± {:.1e} | {:+.2} | {} | {} | ok |",
                    r.case.index,
                    r.case.preconditioner.label,
                    o.dim,
                    o.rank,
                    o.eta,
                    o.theory_discrete,
                    e.mean,
                    e.std_error,
                    o.z_score,
                    est(o.rank_paper),
                    est(o.rank_corrected)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {} | {number} | {} | | | | | | | | | failed: {} |",
                    r.case.index,
                    r.case.preconditioner.label,
                    r.reason.clone().unwrap_or_default().replace('|', "/")
                );
            }
        }
    }
    rank_table(&mut md, records);
    if let Some(t) = timings {
        timing_table(&mut md, t);
    }
    let md_path = dir.join("index.md");
    std::fs::write(&md_path, &md)?;
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style></head><body>\n<h1>{title}</h1>\n<p>{}</p>\n<p>{} cases: {} ran, {failed} failed.</p>\n",
        html_escape(description),
        records.len(),
        ok.len()
    );
    for f in figures {
        let _ = writeln!(
            html,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            f.file,
            f.file,
            html_escape(&f.caption)
        );
    }
    html.push_str("<h2>Scenarios</h2>\n<table><tr><th>#</th><th>scenario</th></tr>\n");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            i + 1,
            html_escape(s)
        );
    }
    html.push_str("</table>\n<p>The table of every case is in <a href=\"index.md\">index.md</a> and <a href=\"summary.csv\">summary.csv</a>; the raw records in <a href=\"results.jsonl\">results.jsonl</a>.</p>\n</body></html>\n");
    std::fs::write(dir.join("index.html"), html)?;
    Ok(md_path)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The comparison chart: each timing's change with its 95% interval and the noise threshold
/// (top), and each accuracy metric's change in standard errors with its threshold (bottom);
/// regressions in red, improvements in green.
pub fn comparison_chart(path: &Path, c: &crate::baseline::Comparison) -> anyhow::Result<()> {
    draw_comparison(path, c).map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

fn draw_comparison(path: &Path, c: &crate::baseline::Comparison) -> DrawResult<()> {
    use crate::baseline::Verdict;
    let verdict_color = |v: Verdict| match v {
        Verdict::Regressed => PALETTE[1],
        Verdict::Improved => PALETTE[2],
        Verdict::Unchanged => PALETTE[0],
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2);
    let t = c.thresholds;
    let n = c.timings.len().max(1) as f64;
    let span = c
        .timings
        .iter()
        .flat_map(|x| [x.lower.abs(), x.upper.abs()])
        .fold(2.0 * t.time, f64::max)
        * 110.0;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            format!("{} → {}: timing change, %", c.old, c.new),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, -span..span)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("benchmark (see compare.md)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for bound in [-t.time, t.time] {
        chart.draw_series(LineSeries::new(
            [(-0.5, 100.0 * bound), (n - 0.5, 100.0 * bound)],
            BLACK.mix(0.5),
        ))?;
    }
    chart.draw_series(c.timings.iter().enumerate().map(|(i, x)| {
        ErrorBar::new_vertical(
            i as f64,
            100.0 * x.lower,
            100.0 * x.change,
            100.0 * x.upper,
            verdict_color(x.verdict).filled(),
            6,
        )
    }))?;
    let m = c.accuracy.len().max(1) as f64;
    let finite = |z: f64| z.clamp(-1e3, 1e3);
    let z_top = c
        .accuracy
        .iter()
        .map(|x| finite(x.z).abs())
        .fold(2.0 * t.accuracy_z, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&lower)
        .caption(
            "accuracy: change of |error| in standard errors",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..m - 0.5, -z_top..z_top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("case metric")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for bound in [-t.accuracy_z, t.accuracy_z] {
        chart.draw_series(LineSeries::new(
            [(-0.5, bound), (m - 0.5, bound)],
            BLACK.mix(0.5),
        ))?;
    }
    chart.draw_series(c.accuracy.iter().enumerate().map(|(i, x)| {
        Circle::new(
            (i as f64, finite(x.z)),
            3,
            verdict_color(x.verdict).filled(),
        )
    }))?;
    finish(&root)
}
