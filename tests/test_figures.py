"""Figures read run folders only; the plotted points are the run's logged cumulative scores."""
import pandas as pd
import pytest

from cel.figures import progressive_figure, progressive_points


def _run(tmp_path, name, values):
    d = tmp_path / name
    d.mkdir()
    rows = [{"step": s, "n": 100 * s, "batch_mse": 9.0, "progressive_mse": v if s % 10 == 0 or s == 25 else None}
            for s, v in zip(range(1, 26), values)]
    pd.DataFrame(rows).to_parquet(d / "curves.parquet")
    return d


def test_progressive_figure_plots_the_logged_cumulative_scores(tmp_path):
    lite = _run(tmp_path, "lite", [2.0 - 0.04 * s for s in range(1, 26)])
    full = _run(tmp_path, "full", [1.5] * 25)
    points = progressive_figure({"CEL-Lite": lite, "full": full}, tmp_path / "fig" / "progressive.png")
    assert (tmp_path / "fig" / "progressive.png").stat().st_size > 1000
    assert list(points["CEL-Lite"]["n"]) == [1000, 2000, 2500]
    assert list(points["CEL-Lite"]["value"]) == pytest.approx([1.6, 1.2, 1.0])


def test_a_run_without_a_stream_is_a_clear_error(tmp_path):
    d = tmp_path / "batch"
    d.mkdir()
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.9]}).to_parquet(d / "curves.parquet")
    with pytest.raises(ValueError, match="progressive_mse"):
        progressive_points(d)
    with pytest.raises(FileNotFoundError, match="curves.parquet"):
        progressive_points(tmp_path / "missing")
