"""The paper's figures, one module each (matplotlib, Agg; every figure writes PDF, PNG and the
CSV of its plotted points). Nothing heavy is imported here: ``cel.figs.cli`` dispatches by name.

========  =====================================================  ==================================
name      what                                                   input
========  =====================================================  ==================================
fig3      test MSE vs compression, dense/original/sparse, ± s.e.  summary.csv
fig4      test MSE by item interaction-count bucket              run folders' metrics.json
fig5      clusters by mean rating + top-5 titles; genre entropy  one run's assignments.parquet + data
fig6      the five split criteria vs compression, average rank   summary.csv
fig7b     share of B_q rows outside the central region C         its own CEL training (probe)
prop1     validation MSE vs M_q on planted synthetic data        its own small grid of CEL runs
========  =====================================================  ==================================

``cel.figures`` (the progressive score of stream runs, ``cel figure``) predates this package.
"""
FIGURES = ("fig3", "fig4", "fig5", "fig6", "fig7b", "prop1")
