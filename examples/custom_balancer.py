"""A balancer of one's own: weights from each term's share of the loss (no parameters, no state).

    L = sum_k w_k L_k,   w_k = stop_gradient(K L_k / sum_j L_j)^(-alpha) normalised to sum K

so a term that dominates the sum is damped and a small one lifted (alpha = 0 is the plain
sum). It is registered by name, so ``pinnopt solve ... -b share --balancing-arg alpha=0.5``
finds it once this file is imported, and ``pinnopt.solve(..., balancing="share")`` too.
Built with ``pinnopt.balancing.stateless``: ``update`` and ``diagnose`` default to no-ops.
"""
import jax
import jax.numpy as jnp

import pinnopt


@pinnopt.balancing.register("share")
def share(alpha: float = 0.5) -> pinnopt.balancing.Balancer:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")

    def loss(objectives):
        means = {name: jnp.mean(obj.loss) for name, obj in objectives.items()}
        total = sum(means.values())
        k = len(means)
        raw = {n: jax.lax.stop_gradient(k * m / (total + 1e-30)) ** (-alpha) for n, m in means.items()}
        norm = k / sum(raw.values())
        value = sum(norm * raw[n] * means[n] for n in means)
        metrics = {f"raw/{n}": m for n, m in means.items()}
        metrics.update({f"weight/{n}": norm * raw[n] for n in means})
        return value, {**metrics, "balanced": value}

    return pinnopt.balancing.stateless(loss)


if __name__ == "__main__":
    result = pinnopt.solve(pinnopt.problems.get("convection", beta=5.0, ic="objective", n_points=256),
                           balancing="share", balancing_kwargs={"alpha": 0.5}, steps=300)
    print({k: round(v, 4) for k, v in result.summary["final"].items() if k.startswith(("weight/", "eval/"))})
