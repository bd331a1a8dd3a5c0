"""The SNR study of an ES run (the paper's Figure 7 material): per ticket, how the SNR criterion's choice
differs from the magnitude criterion's.

Rows follow the convention of ``esprune show``: row k describes ticket k, the one made by pruning the search
distribution trained in iteration k − 1 (final or best mean, as the run pruned from), so row k's SNR threshold is
``show``'s threshold of row k in an SNR-pruned run, and ``weights`` counts prunable weights (biases are never
pruned). Per row: each criterion's threshold for keeping ticket k's count, the Jaccard overlap of the two kept
sets, the (Pearson and Spearman) correlation of |μ| and σ over the weights active in iteration k − 1, per-layer
kept counts under each criterion, and histograms of log10 SNR for the weights the SNR criterion keeps and
prunes. The last row describes the ticket one iteration past the run's end (what ``resume --iterations`` would
train next).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .. import prune
from ..errors import UserError
from ..store import from_vector
from .solutions import finished_iterations, load

BINS = np.linspace(-4, 4, 41)  # log10 SNR


def study(path) -> list[dict]:
    """One row per finished iteration k − 1, keyed by the ticket k its pruning makes (``iteration(path, k)``)."""
    iterations = finished_iterations(path)
    if not iterations:
        raise UserError(f"{path} has no finished iteration yet")
    return [iteration(path, k + 1) for k in iterations]


def iteration(path, ticket: int) -> dict:
    """The row of ticket ``ticket`` (≥ 1): the pruning of iteration ``ticket − 1``'s trained distribution."""
    k = ticket - 1
    first = load(path, k)
    cfg = first.config
    sol = load(path, k, which=cfg.get("prune_from", "final"))
    if sol.std_full is None:
        raise UserError(f"{path} was trained by gradient descent: the SNR study needs an ES run's search std")
    spec, mask = sol.net.spec, sol.mask
    mean, std = from_vector(spec, sol.full), from_vector(spec, sol.std_full)
    n_next = prune.kept_after(spec.prunable_size, cfg["keep"], k + 1)
    chosen = {}
    for criterion in ("magnitude", "snr"):
        score = prune.scores(criterion, spec, mean=mean, std=std, snr_variance=cfg.get("snr_variance", False))
        chosen[criterion] = prune.prune_to(score, mask, n_next)
    names = spec.prunable_names
    active = np.concatenate([mask[n].reshape(-1) for n in names])
    keep_m = np.concatenate([chosen["magnitude"][0][n].reshape(-1) for n in names])
    keep_s = np.concatenate([chosen["snr"][0][n].reshape(-1) for n in names])
    mu = np.abs(np.concatenate([mean[n].reshape(-1) for n in names]))[active]
    sigma = np.concatenate([std[n].reshape(-1) for n in names])[active]
    log_snr = np.log10(np.maximum(mu, 1e-300) / sigma)
    kept_by_snr = keep_s[active]
    union = (keep_m | keep_s).sum()
    return {"iteration": k + 1, "trained_in": k, "sparsity": 1.0 - n_next / spec.prunable_size, "weights": n_next,
            "weights_before": int(active.sum()),
            "magnitude_threshold": chosen["magnitude"][1], "snr_threshold": chosen["snr"][1],
            "jaccard": float((keep_m & keep_s).sum() / union) if union else 1.0,
            "pearson_mean_std": _corr(pearsonr, mu, sigma), "spearman_mean_std": _corr(spearmanr, mu, sigma),
            "kept_per_layer": {n: {"magnitude": int(chosen["magnitude"][0][n].sum()),
                                   "snr": int(chosen["snr"][0][n].sum()), "weights_before": int(mask[n].sum())}
                               for n in names},
            "log10_snr_bins": BINS, "log10_snr_kept": np.histogram(log_snr[kept_by_snr], BINS)[0],
            "log10_snr_pruned": np.histogram(log_snr[~kept_by_snr], BINS)[0]}


def _corr(fn, a, b) -> float:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


COLUMNS = (("iteration", "iter", "{:d}"), ("sparsity", "sparsity", "{:.4f}"), ("weights", "weights", "{:d}"),
           ("trained_in", "pruned from iter", "{:d}"),
           ("magnitude_threshold", "|μ| threshold", "{:.4g}"), ("snr_threshold", "SNR threshold", "{:.4g}"),
           ("jaccard", "Jaccard", "{:.3f}"), ("pearson_mean_std", "corr(|μ|,σ)", "{:.3f}"),
           ("spearman_mean_std", "rank corr", "{:.3f}"))


def figure(results, out, plt) -> None:
    fig, (ax_j, ax_h) = plt.subplots(1, 2, figsize=(10, 4))
    its = [r["iteration"] for r in results]
    ax_j.plot(its, [r["jaccard"] for r in results], marker="o", label="Jaccard(magnitude, SNR)")
    ax_j.plot(its, [r["spearman_mean_std"] for r in results], marker="s", label="rank corr(|μ|, σ)")
    ax_j.set_xlabel("IMP iteration (the ticket made)")
    ax_j.set_ylim(-1.05, 1.05)
    ax_j.legend(fontsize=8)
    centres = 0.5 * (BINS[1:] + BINS[:-1])
    for r in (results[0], results[-1]):
        ax_h.step(centres, r["log10_snr_kept"], where="mid", label=f"it {r['iteration']} kept")
        ax_h.step(centres, r["log10_snr_pruned"], where="mid", linestyle="--", label=f"it {r['iteration']} pruned")
    ax_h.set_xlabel("log10 SNR = log10 |μ|/σ")
    ax_h.set_ylabel("weights")
    ax_h.legend(fontsize=8)
    for ax in (ax_j, ax_h):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
