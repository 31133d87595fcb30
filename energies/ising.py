"""Ising model on an n×n square lattice: a discrete target with exact and Gibbs ground truth.

The paper's energy-based experiments (10×10 and 30×30 lattices) use

    log f(x) = sᵀ J s + bᵀ s,    s = 2x − 1 ∈ {−1, +1}^D,    J = σ·A,    b = bias·1,

with ``A`` the symmetric 0/1 nearest-neighbour adjacency of the lattice (periodic or open).
Because ``sᵀ J s`` visits every edge twice, each edge contributes ``2σ·s_i·s_j``.

Sites are numbered row-major, ``i = r·n + c``, so a flat token row ``x`` of length ``D = n²``
reshapes to the lattice with ``x.view(B, n, n)``. Tokens are ``0`` (spin −1) and ``1`` (spin +1),
``K = 2``, and id ``2`` is the mask token for partial configurations.

Ground truth comes in two flavours: exact enumeration for ``D <= 20`` (normalised log-probs,
marginals of any partial configuration) and vectorised single-site Gibbs sampling for larger
lattices. Shapes: ``B`` batch, ``D = n²`` sites, ``C`` Gibbs chains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

from energies import register
from mam_core.core.enumeration import all_states, exact_log_marginal

__all__ = ["IsingParams", "IsingEnergy", "MAX_ENUM_D"]

#: Largest D for which exact enumeration (2^D states) is allowed; 2^20 rows of D longs ≈ 170 MB.
MAX_ENUM_D = 20


@dataclass(frozen=True)
class IsingParams:
    """Parameters of the lattice Ising target.

    Attributes:
        n: Side length of the square lattice; ``D = n²`` spins. Paper: 10 and 30.
        sigma: Coupling strength, ``J = sigma·A``. Paper default 0.1 (weak, high-temperature).
        bias: External field on every site, ``b = bias·1``. Paper default 0.2 (favours spin +1).
        periodic: Wrap the lattice into a torus (paper setting). Needs ``n >= 3``, because on a
            2-torus the "left" and "right" neighbours coincide and A would not be 0/1.
    """

    n: int
    sigma: float = 0.1
    bias: float = 0.2
    periodic: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int):
            raise ValueError(f"IsingParams.n must be an int, got {self.n!r}")
        if self.n < 2:
            raise ValueError(f"IsingParams.n must be >= 2 (a lattice needs edges), got {self.n}")
        if not isinstance(self.periodic, bool):
            raise ValueError(f"IsingParams.periodic must be a bool, got {self.periodic!r}")
        if self.periodic and self.n < 3:
            raise ValueError(
                f"a periodic lattice needs n >= 3 (on n={self.n} neighbours wrap onto each "
                "other); use periodic=False"
            )
        for field_name in ("sigma", "bias"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"IsingParams.{field_name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"IsingParams.{field_name} must be finite, got {value!r}")
            # Store plain floats so equality, hashing and repr do not depend on int vs float input.
            object.__setattr__(self, field_name, float(value))


def _lattice_edges(n: int, periodic: bool) -> torch.Tensor:
    """Undirected nearest-neighbour edges ``(E, 2)`` with ``i < j``, row-major site ids.

    Each site links to its right and down neighbour (wrapping when periodic), which lists every
    edge exactly once: ``E = 2n²`` periodic (n >= 3), ``2n(n−1)`` open.
    """
    edges: list[tuple[int, int]] = []
    for r in range(n):
        for c in range(n):
            i = r * n + c
            for dr, dc in ((0, 1), (1, 0)):
                rr, cc = r + dr, c + dc
                if periodic:
                    rr, cc = rr % n, cc % n
                elif rr >= n or cc >= n:
                    continue
                j = rr * n + cc
                edges.append((min(i, j), max(i, j)))
    return torch.tensor(sorted(edges), dtype=torch.long)


def _neighbour_table(num_sites: int, edges: torch.Tensor) -> torch.Tensor:
    """Neighbour ids ``(D, 4)``, padded with ``D`` (a slot that always holds spin 0).

    A fixed-width table lets the sampler gather all local fields of a colour class in one indexing
    op; the zero padding makes open-boundary sites with fewer than 4 neighbours need no masking.
    """
    table = torch.full((num_sites, 4), num_sites, dtype=torch.long)
    fill = [0] * num_sites
    for i, j in edges.tolist():
        table[i, fill[i]] = j
        fill[i] += 1
        table[j, fill[j]] = i
        fill[j] += 1
    return table


@register("ising")
class IsingEnergy:
    """Ising target ``log f(x) = sᵀJs + bᵀs`` on an n×n lattice (paper's energy-based benchmark).

    Args:
        n: Lattice side; ``D = n²``.
        sigma: Coupling, ``J = sigma·A``.
        bias: Field, ``b = bias·1``.
        periodic: Toroidal (True, paper) or open boundary.

    Attributes:
        name: Registry key, ``"ising"``.
        description: One human-readable sentence including the parameters.
        params: The validated :class:`IsingParams`.
        D: Number of sites, ``n²``.
        K: Number of real tokens, 2 (token 0 is spin −1, token 1 is spin +1).
        mask_id: Id of the mask token, ``K = 2``.
        edges: ``(E, 2)`` long, undirected edges with ``i < j``.
        adjacency: ``(D, D)`` float32 symmetric 0/1 matrix A (built lazily; it is O(D²)).
    """

    name = "ising"
    K = 2
    mask_id = 2

    def __init__(
        self, n: int, sigma: float = 0.1, bias: float = 0.2, periodic: bool = True
    ) -> None:
        self.params = IsingParams(n=n, sigma=sigma, bias=bias, periodic=periodic)
        self.n = self.params.n
        self.D = self.n * self.n
        boundary = "periodic" if self.params.periodic else "open-boundary"
        self.description = (
            f"Ising model on a {self.n}×{self.n} {boundary} lattice (D={self.D} spins) with "
            f"coupling σ={self.params.sigma:g} and field bias={self.params.bias:g}."
        )
        self.edges = _lattice_edges(self.n, self.params.periodic)  # (E, 2)
        self._neighbours = _neighbour_table(self.D, self.edges)  # (D, 4)
        # Sites of one checkerboard colour share no edge, so they are conditionally independent
        # and can be resampled in one block. That needs a bipartite lattice: open, or even n.
        self.checkerboard = (not self.params.periodic) or self.n % 2 == 0
        if self.checkerboard:
            colour = torch.arange(self.D) // self.n + torch.arange(self.D) % self.n  # r + c
            self._blocks = [torch.nonzero(colour % 2 == k).flatten() for k in (0, 1)]
        else:  # odd periodic: systematic scan, one site at a time
            self._blocks = [torch.tensor([i]) for i in range(self.D)]
        self._adjacency: torch.Tensor | None = None
        self._device_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._states: torch.Tensor | None = None
        self._log_probs: torch.Tensor | None = None
        self._log_z: float | None = None

    @classmethod
    def from_params(cls, params: IsingParams) -> "IsingEnergy":
        """Build from an already validated :class:`IsingParams` (e.g. from a saved config)."""
        return cls(n=params.n, sigma=params.sigma, bias=params.bias, periodic=params.periodic)

    def __repr__(self) -> str:
        p = self.params
        return f"IsingEnergy(n={p.n}, sigma={p.sigma}, bias={p.bias}, periodic={p.periodic})"

    # ------------------------------------------------------------------ lattice metadata

    @property
    def adjacency(self) -> torch.Tensor:
        """``(D, D)`` float32 symmetric 0/1 adjacency A, zero diagonal. Cached; do not mutate."""
        if self._adjacency is None:
            a = torch.zeros(self.D, self.D, dtype=torch.float32)
            a[self.edges[:, 0], self.edges[:, 1]] = 1.0
            a[self.edges[:, 1], self.edges[:, 0]] = 1.0
            self._adjacency = a
        return self._adjacency

    def as_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape token rows ``(B, D)`` to lattices ``(B, n, n)`` for display (row-major)."""
        self._check_tokens(x, allow_mask=True)
        return x.reshape(x.shape[0], self.n, self.n)

    # ------------------------------------------------------------------ evaluation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``log f(x)`` in float32, shape ``(B,)``; see :meth:`log_f`."""
        return self.log_f(x)

    def log_f(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Unnormalised log target ``sᵀJs + bᵀs`` (paper's Ising energy), on ``x``'s device.

        Args:
            x: ``(B, D)`` integer tokens in {0, 1}; no mask tokens.
            dtype: Floating dtype of the computation and result; float64 for exact comparisons.

        Returns:
            ``(B,)`` log f(x).

        Raises:
            ValueError: If ``x`` is not ``(B, D)``, is floating point, or holds ids outside {0, 1}
                (including the mask id 2).
        """
        self._check_tokens(x, allow_mask=False)
        edge_i, edge_j = self._edges_on(x.device)
        s = 2.0 * x.to(dtype) - 1.0  # (B, D)
        pair = (s[:, edge_i] * s[:, edge_j]).sum(dim=-1)  # (B,)  Σ_edges s_i s_j
        # sᵀJs counts each undirected edge twice, hence the factor 2.
        return 2.0 * self.params.sigma * pair + self.params.bias * s.sum(dim=-1)  # (B,)

    def energy(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Physics-style energy ``E(x) = −log f(x)`` (T = 1), shape ``(B,)``."""
        return -self.log_f(x, dtype=dtype)

    def conditional_logits(
        self, x: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Logits of the Gibbs conditionals, ``logit P(x_d = 1 | x_{−d})`` for every site.

        Flipping ``s_i`` changes only the terms ``2·s_i·Σ_j J_ij s_j + b_i s_i`` (the 2 because
        ``sᵀJs`` has both ``J_ij`` and ``J_ji``), so
        ``log f(s_i=+1) − log f(s_i=−1) = 2·(2·Σ_j J_ij s_j + b_i)``. The sampler uses the same
        helper, so testing this against enumeration tests the sampler's update rule.

        Args:
            x: ``(B, D)`` tokens in {0, 1}; ``x_d`` itself is ignored for the logit at ``d``.
            dtype: Floating dtype of the result.

        Returns:
            ``(B, D)`` logits; ``torch.sigmoid`` gives ``P(x_d = 1 | rest)``.
        """
        self._check_tokens(x, allow_mask=False)
        s = self._padded_spins(x, dtype)  # (B, D+1)
        return self._local_logits(s, self._neighbours.to(x.device))  # (B, D)

    # ------------------------------------------------------------------ exact enumeration

    def all_states(self) -> torch.Tensor:
        """All ``2^D`` configurations ``(2^D, D)`` long, row ``k`` = binary digits of ``k``.

        Site 0 is the most significant bit, so rows are in lexicographic order. Cached per
        instance; treat the result as read-only.

        Raises:
            ValueError: If ``D > 20`` (enumeration would not fit in memory).
        """
        self._require_enumerable()
        if self._states is None:
            self._states = all_states(self.D, self.K)  # (2^D, D)
        return self._states

    def exact_log_probs(self) -> torch.Tensor:
        """Normalised ``log p*(x)`` over :meth:`all_states`, ``(2^D,)`` float64, cached."""
        if self._log_probs is None:
            log_f = self.log_f(self.all_states(), dtype=torch.float64)  # (2^D,)
            log_z = torch.logsumexp(log_f, dim=0)
            self._log_probs = log_f - log_z
            self._log_z = float(log_z)
        return self._log_probs

    def exact_log_partition(self) -> float:
        """``log Z = log Σ_x f(x)`` by enumeration (``D <= 20``)."""
        self.exact_log_probs()
        assert self._log_z is not None
        return self._log_z

    def exact_site_marginals(self) -> torch.Tensor:
        """``P(x_d = 1)`` for every site, ``(D,)`` float64, by enumeration (``D <= 20``)."""
        probs = self.exact_log_probs().exp()  # (2^D,)
        return probs @ self.all_states().to(torch.float64)  # (D,)

    def exact_log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p*(x_S)`` of partial configurations by summing over all completions.

        This is the ground truth a MaM's marginal head should match.

        Args:
            x: ``(B, D)`` integer tokens in {0, 1, 2}; id 2 (mask) marks unobserved sites.

        Returns:
            ``(B,)`` float64 on ``x``'s device; 0 for a fully masked row.

        Raises:
            ValueError: If ``D > 20`` or ``x`` is malformed.
        """
        self._check_tokens(x, allow_mask=True)
        return exact_log_marginal(self.all_states(), self.exact_log_probs(), x, self.mask_id)

    # ------------------------------------------------------------------ Gibbs sampling

    @torch.no_grad()
    def gibbs_sample(
        self,
        num_chains: int,
        num_sweeps: int,
        generator: torch.Generator | None = None,
        init: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Ground-truth samples by single-site Gibbs sampling, vectorised across chains.

        Each sweep resamples every site once from ``P(s_i = +1 | rest) =
        sigmoid(2·(2·Σ_j J_ij s_j + b_i))`` (see :meth:`conditional_logits`). On bipartite
        lattices (open, or periodic with even n) a sweep is two checkerboard half-sweeps, each
        updating all sites of one colour at once; that is exact Gibbs because same-coloured sites
        share no edge. Odd periodic lattices fall back to a systematic scan over sites.

        Args:
            num_chains: Number of independent chains ``C`` (one sample each).
            num_sweeps: Number of full sweeps; use enough for burn-in (hundreds at σ=0.1).
            generator: Optional ``torch.Generator`` for reproducibility; it must live on the
                sampling device.
            init: Optional ``(C, D)`` tokens in {0, 1} to start from; uniform random otherwise.
            device: Where to run; defaults to ``init``'s device, then the generator's, then CPU.
            progress: Show a tqdm bar over sweeps.

        Returns:
            ``(C, D)`` long tokens in {0, 1}, the chain states after the last sweep.

        Raises:
            ValueError: On non-positive ``num_chains``, negative ``num_sweeps`` or malformed
                ``init``.
        """
        if isinstance(num_chains, bool) or not isinstance(num_chains, int) or num_chains < 1:
            raise ValueError(f"num_chains must be a positive int, got {num_chains!r}")
        if isinstance(num_sweeps, bool) or not isinstance(num_sweeps, int) or num_sweeps < 0:
            raise ValueError(f"num_sweeps must be a non-negative int, got {num_sweeps!r}")
        if device is None:
            if init is not None:
                device = init.device
            elif generator is not None:
                device = generator.device
            else:
                device = torch.device("cpu")
        device = torch.device(device)
        if init is None:
            init = torch.randint(0, 2, (num_chains, self.D), generator=generator, device=device)
        else:
            self._check_tokens(init, allow_mask=False)
            if init.shape[0] != num_chains:
                raise ValueError(
                    f"init has {init.shape[0]} rows but num_chains={num_chains}"
                )
            init = init.to(device)
        spins = self._padded_spins(init, torch.float32)  # (C, D+1), last column stays 0
        neighbours = self._neighbours.to(device)  # (D, 4)
        blocks = [(b, neighbours[b]) for b in (blk.to(device) for blk in self._blocks)]
        sweeps: Iterable[int] = range(num_sweeps)
        if progress:
            from tqdm.auto import tqdm

            sweeps = tqdm(sweeps, desc=f"Gibbs {self.n}x{self.n}", unit="sweep")
        for _ in sweeps:
            for sites, nbrs in blocks:
                logits = self._local_logits(spins, nbrs)  # (C, |sites|)
                u = torch.rand(logits.shape, generator=generator, device=device)
                up = u < torch.sigmoid(logits)  # (C, |sites|)
                spins[:, sites] = up.to(spins.dtype) * 2.0 - 1.0
        return ((spins[:, : self.D] + 1.0) / 2.0).round().long()  # (C, D)

    # ------------------------------------------------------------------ helpers

    def _local_logits(self, spins: torch.Tensor, nbrs: torch.Tensor) -> torch.Tensor:
        """``2·(2σ·Σ_{j∈N(i)} s_j + bias)`` for the sites whose neighbour rows are ``nbrs``.

        Args:
            spins: ``(B, D+1)`` spins in {−1, +1} with a trailing 0 column for padding.
            nbrs: ``(S, 4)`` neighbour ids (padding id D).

        Returns:
            ``(B, S)`` logits of ``P(s_i = +1 | rest)``.
        """
        field = self.params.sigma * spins[:, nbrs].sum(dim=-1)  # (B, S)  Σ_j J_ij s_j
        return 2.0 * (2.0 * field + self.params.bias)

    def _padded_spins(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Tokens ``(B, D)`` -> spins ``(B, D+1)`` with a zero padding column for the table."""
        spins = torch.zeros(x.shape[0], self.D + 1, dtype=dtype, device=x.device)
        spins[:, : self.D] = 2.0 * x.to(dtype) - 1.0
        return spins

    def _edges_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge endpoint ids ``(E,)``, ``(E,)`` on ``device``, cached to avoid per-call copies."""
        if device not in self._device_cache:
            edges = self.edges.to(device)
            self._device_cache[device] = (edges[:, 0].contiguous(), edges[:, 1].contiguous())
        return self._device_cache[device]

    def _require_enumerable(self) -> None:
        if self.D > MAX_ENUM_D:
            raise ValueError(
                f"exact enumeration needs D <= {MAX_ENUM_D} (2^D states), but D={self.D}; "
                "use gibbs_sample for ground truth on larger lattices"
            )

    def _check_tokens(self, x: torch.Tensor, allow_mask: bool) -> None:
        """Validate a token batch, naming the problem so callers can fix their data."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of token ids, got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(
                f"x must have shape (B, D={self.D}), got a {x.dim()}-D tensor of shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[1] != self.D:
            raise ValueError(
                f"x has {x.shape[1]} positions but this {self.n}x{self.n} lattice has D={self.D}"
            )
        if x.is_floating_point() or x.is_complex():
            raise ValueError(f"x must hold integer token ids, got dtype {x.dtype}")
        if x.numel() == 0:
            return
        ids = x.long()
        top = self.mask_id if allow_mask else self.K - 1
        lo, hi = int(ids.min()), int(ids.max())
        if lo >= 0 and hi <= top:
            return
        if not allow_mask and lo >= 0 and hi == self.mask_id:
            raise ValueError(
                f"x contains mask tokens (id {self.mask_id}); log f needs complete "
                "configurations, use exact_log_marginal for partial ones"
            )
        raise ValueError(
            f"x has token ids outside [0, {top}] (min {lo}, max {hi}); Ising tokens are 0 "
            f"(spin −1) and 1 (spin +1){' plus mask id 2' if allow_mask else ''}"
        )
