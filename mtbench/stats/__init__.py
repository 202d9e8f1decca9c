"""Statistics on Predictions and results tables: which test answers which question.

=====================================================  =============================================
question                                               function
=====================================================  =============================================
CI of an AUC                                           :func:`delong_auc` (or :func:`bootstrap_ci`)
CI of any metric of a Predictions table                :func:`bootstrap_metrics` (percentile / BCa)
two scores' AUCs on the same cases                     :func:`delong_test`
two AUCs on different cases                            :func:`delong_test_unpaired`
any metric, two models, same cases                     :func:`bootstrap_difference`
two classifiers' decisions, same cases                 :func:`mcnemar_test` (k classifiers: :func:`cochrans_q_test`)
best threshold, sensitivity/specificity with CIs       :func:`best_threshold`, :func:`roc_coords`
two models over independent runs / data sets           :func:`paired_ttest`, :func:`wilcoxon_test`,
                                                       :func:`sign_test`, :func:`bayesian_signed_rank_test`
two models over CV folds (overlapping training sets)   :func:`corrected_resampled_ttest`,
                                                       :func:`bayesian_correlated_ttest`
many models over many data sets                        :func:`friedman_test`, :func:`nemenyi_test`,
                                                       :func:`pairwise_wilcoxon`, :func:`plot_cd_diagram`,
                                                       :func:`friedman_posthoc` (Shaffer, Bergmann-Hommel)
agreement between raters                               :func:`cohen_kappa`, :func:`fleiss_kappa`
agreement of two measurements (e.g. volumes in mL)     :func:`bland_altman`
a model against readers                                :func:`reader_study`
a report with CIs, marks and published numbers         :func:`compare`
=====================================================  =============================================
"""

from mtbench.stats.agreement import BlandAltmanResult, KappaResult, bland_altman, cohen_kappa, fleiss_kappa, pairwise_kappa, ratings_matrix
from mtbench.stats.bayesian import SignedRankPosterior, bayesian_signed_rank_test
from mtbench.stats.bootstrap import (
    BootstrapResult,
    auc_statistic,
    bootstrap_ci,
    bootstrap_difference,
    bootstrap_metrics,
    resample_indices,
)
from mtbench.stats.paired import (
    BayesianResult,
    PairedTestResult,
    align_pairs,
    bayesian_correlated_ttest,
    cochrans_q_test,
    compare_paired,
    corrected_resampled_ttest,
    mcnemar_test,
    paired_ttest,
    paired_values,
    sign_test,
    wilcoxon_test,
)
from mtbench.stats.posthoc import bergmann_hommel_adjust, friedman_posthoc, shaffer_adjust, shaffer_true_counts
from mtbench.stats.ranking import (
    FriedmanResult,
    average_ranks,
    cliques_from_cd,
    cliques_from_pvalues,
    control_test,
    correct_pvalues,
    critical_difference,
    friedman_test,
    nemenyi_test,
    pairwise_wilcoxon,
    plot_cd_diagram,
    score_matrix,
)
from mtbench.stats.readers import ReaderStudyResult, operating_point, reader_study, simulate_readers
from mtbench.stats.report import Comparison, compare, load_reference, predictions_from_scores, significance_mark
from mtbench.stats.roc import (
    AUCResult,
    DeLongTestResult,
    auc_batch,
    auc_table,
    delong_auc,
    delong_covariance,
    delong_naive,
    delong_test,
    delong_test_unpaired,
    roc_points,
)
from mtbench.stats.thresholds import ThresholdResult, best_threshold, roc_coords

__all__ = [
    "AUCResult", "BayesianResult", "BootstrapResult", "Comparison", "DeLongTestResult", "FriedmanResult", "KappaResult",
    "PairedTestResult", "ReaderStudyResult",
    "align_pairs", "auc_batch", "auc_statistic", "auc_table", "average_ranks", "bayesian_correlated_ttest",
    "bootstrap_ci", "bootstrap_difference", "bootstrap_metrics", "cliques_from_cd", "cliques_from_pvalues",
    "bland_altman", "BlandAltmanResult", "cohen_kappa", "compare", "compare_paired", "control_test", "corrected_resampled_ttest", "correct_pvalues",
    "critical_difference", "delong_auc", "delong_covariance", "delong_naive", "delong_test", "delong_test_unpaired",
    "fleiss_kappa", "friedman_test", "load_reference", "mcnemar_test", "nemenyi_test", "operating_point",
    "paired_ttest", "paired_values", "pairwise_kappa", "pairwise_wilcoxon", "plot_cd_diagram",
    "predictions_from_scores", "ratings_matrix", "reader_study", "resample_indices", "roc_points", "score_matrix",
    "significance_mark", "simulate_readers", "wilcoxon_test",
    "SignedRankPosterior", "ThresholdResult", "bayesian_signed_rank_test", "bergmann_hommel_adjust", "best_threshold",
    "cochrans_q_test", "friedman_posthoc", "roc_coords", "shaffer_adjust", "shaffer_true_counts", "sign_test",
]
