"""Any-order ancestral sampling and the censor-and-resample (block Gibbs) move.

Both fill masked positions one at a time from the conditional head ``p_φ(x_i | x_S)``, so
sampling costs one forward pass per filled position whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .orders import make_orders, restrict_order
from .rng import make_generator

__all__ = ["sample", "sample_traced", "DrawTrace", "censor_and_resample", "fill_in_order",
           "fill_by_confidence", "DYNAMIC_ORDERS"]


#: Orders decided while sampling rather than drawn up front.
DYNAMIC_ORDERS = ("confidence",)


def _draw(logits: torch.Tensor, temperature: float, generator, top_p: float = 1.0) -> torch.Tensor:
    """One categorical draw per row from ``(n, K)`` logits, with temperature and nucleus (top-p)
    truncation: only the most likely tokens whose probabilities add up to ``top_p`` stay."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = nucleus(torch.softmax(logits.float() / temperature, dim=-1), top_p)  # (n, K)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (n,)


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """``(n, K)`` probabilities with the tokens outside the top-p nucleus set to zero: only the
    most likely tokens whose probabilities add up to ``top_p`` stay (not renormalised)."""
    if top_p >= 1.0:
        return probs
    sorted_p, idx = probs.sort(dim=-1, descending=True)  # (n, K)
    before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of the more likely tokens
    sorted_p = torch.where(before < top_p, sorted_p, torch.zeros_like(sorted_p))
    return torch.zeros_like(probs).scatter_(1, idx, sorted_p)


def nucleus_of_allowed(probs: list[float], allows, top_p: float) -> list[tuple[int, float]]:
    """The tokens (with their probabilities) that :func:`_draw` may return once the
    probabilities ``probs`` are restricted to the tokens ``allows(i)`` accepts and renormalised,
    asking ``allows`` about as few tokens as the nucleus needs.

    Tokens are asked most likely first.  With ``S`` the allowed mass found so far and ``R`` the
    mass not yet asked about, the allowed mass ``A`` lies in ``[S, S + R]``; an allowed token
    whose more likely allowed tokens hold ``B`` stays when ``B < top_p·A``, which is settled once
    ``B < top_p·S`` or ``B >= top_p·(S + R)``, and the tokens not asked about are out once
    ``S >= top_p·(S + R)``.  A peaked conditional settles after one or two questions, where the
    full mask asks about all ``K`` tokens.  Empty when nothing is allowed.
    """
    order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)
    rest = 1.0
    found: list[tuple[int, float, float]] = []  # (token, probability, allowed mass before it)
    mass = 0.0
    for n_asked, i in enumerate(order, start=1):
        rest = max(rest - probs[i], 0.0) if n_asked < len(order) else 0.0
        if allows(i):
            found.append((i, probs[i], mass))
            mass += probs[i]
        if mass <= 0.0:
            continue
        lo, hi = top_p * mass, top_p * (mass + rest)
        if mass >= hi and all(b < lo or b >= hi for _, _, b in found):
            return [(t, q) for t, q, b in found if b < lo]
    return []


def _draw_checked(logits: torch.Tensor, temperature: float, generator, top_p: float,
                  checks: list) -> torch.Tensor:
    """:func:`_draw` of ``(n, K)`` logits restricted, row by row, to the tokens ``checks[b]``
    allows (a function ``token id -> bool``, or ``None`` for every token): the same
    distribution as masking the logits first, without asking about every token."""
    everything = lambda i: True  # noqa: E731
    if temperature <= 0:
        out = []
        for row, check in zip(logits.tolist(), checks):
            order = sorted(range(len(row)), key=row.__getitem__, reverse=True)
            allows = check or everything
            out.append(next((i for i in order if allows(i)), order[0]))
        return torch.tensor(out, device=logits.device)
    probs = torch.softmax(logits.float() / temperature, dim=-1).tolist()
    u = torch.rand(len(probs), generator=generator, device=logits.device).tolist()
    out = []
    for row, check, ub in zip(probs, checks, u):
        kept = nucleus_of_allowed(row, check or everything, top_p)
        if not kept:  # nothing allowed: the model's own conditional
            kept = nucleus_of_allowed(row, everything, top_p)
        target, tok = ub * sum(q for _, q in kept), kept[-1][0]
        for t, q in kept:
            target -= q
            if target < 0:
                tok = t
                break
        out.append(tok)
    return torch.tensor(out, device=logits.device)


def _weights_cast_once(x: torch.Tensor, bf16: bool):
    """An autocast context for a whole sampling loop: autocast keeps its bfloat16 copies of the
    weights until its outermost context closes, so one context around every pass casts each
    weight once, where a context per pass cast them all again each time (about 8 % of a pass of
    64 rows on CPU).  Disabled in float32."""
    return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16)


def _conditional(model, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Conditional logits ``(n, D, K)`` in float32; ``bf16`` runs the network under bfloat16
    autocast (about twice as fast where the hardware has fast bfloat16 arithmetic)."""
    if not bf16:
        return model.net.conditional(x)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
        return model.net.conditional(x).float()


def _conditional_at(model, x: torch.Tensor, pos: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Conditional logits ``(n, K)`` at position ``pos[b]`` of each row, float32: a sampler
    filling one position per row needs no more (the network may skip work elsewhere)."""
    at = getattr(model.net, "conditional_at", None)
    if at is None:
        return _conditional(model, x, bf16)[torch.arange(x.shape[0], device=x.device), pos]
    if not bf16:
        return at(x, pos)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
        return at(x, pos).float()


def _allowed(constraint, x: torch.Tensor, pos: torch.Tensor, mask_id: int) -> torch.Tensor:
    """``(n, K)`` bool: the tokens ``constraint`` allows at ``pos`` (a syntax, for example); a
    row where it allows nothing allows everything, i.e. keeps the model's own conditional."""
    allowed = constraint(x, pos, mask_id).to(x.device)
    return allowed | ~allowed.any(dim=-1, keepdim=True)


def _constrain(logits: torch.Tensor, constraint, x: torch.Tensor, pos: torch.Tensor, mask_id: int):
    """Renormalise ``(n, K)`` logits over the tokens ``constraint`` allows at ``pos``
    (:func:`_allowed`)."""
    if constraint is None:
        return logits
    return logits.masked_fill(~_allowed(constraint, x, pos, mask_id), float("-inf"))


def _check_top_p(top_p: float) -> None:
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def fill_by_confidence(
    model,
    x: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    top_p: float = 1.0,
    trajectory: list | None = None,
    per_pass: int = 1,
    constraint=None,
    bf16: bool = False,
) -> torch.Tensor:
    """Fill every masked position of ``x``, each step the one whose conditional is most certain.

    Certainty is the probability of a position's most likely token under ``p_φ(x_i | x_S)``
    (MaskGIT's and GenMol's confidence); the token itself is then drawn with ``temperature``
    and ``top_p``.  ``per_pass > 1`` fills that many of the most certain positions from one
    forward pass (each drawn from its own conditional given the same ``x_S``), dividing the
    number of passes at some cost in quality; ``1`` is exact ancestral sampling.
    """
    if per_pass < 1:
        raise ValueError(f"per_pass must be >= 1, got {per_pass}")
    with _weights_cast_once(x, bf16):
        return _fill_by_confidence(model, x, temperature, generator, top_p, trajectory, per_pass,
                                   constraint, bf16)


def _fill_by_confidence(model, x, temperature, generator, top_p, trajectory, per_pass,
                        constraint, bf16) -> torch.Tensor:
    rows = torch.arange(x.shape[0], device=x.device)
    while True:
        masked = x == model.mask_id  # (n, D)
        n_masked = masked.sum(dim=1)  # (n,)
        if not bool(n_masked.any()):
            break
        logits = _conditional(model, x, bf16)  # (n, D, K)
        conf = torch.softmax(logits.float(), dim=-1).amax(dim=-1)  # (n, D)
        conf = torch.where(masked, conf, torch.full_like(conf, -1.0))
        k = min(per_pass, int(n_masked.max()))
        pos = conf.topk(k, dim=1).indices  # (n, k), most certain first
        for j in range(k):
            p = pos[:, j]
            step_logits = _constrain(logits[rows, p], constraint, x, p, model.mask_id)
            tok = _draw(step_logits, temperature, generator, top_p)  # (n,)
            fill = j < n_masked  # rows with fewer masked positions fill fewer
            x[rows, p] = torch.where(fill, tok, x[rows, p])
        if trajectory is not None:
            trajectory.append(x.clone())
    return x


def fill_in_order(
    model,
    x: torch.Tensor,
    seq: torch.Tensor,
    start: torch.Tensor,
    count: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    trajectory: list | None = None,
    top_p: float = 1.0,
    constraint=None,
    bf16: bool = False,
    trace: "DrawTrace | None" = None,
    reference=None,
) -> torch.Tensor:
    """Fill positions ``seq[b, start[b] : start[b] + count[b]]`` of ``x`` one by one.

    The positions must already hold the mask id.  Rows with fewer positions to fill simply
    stop early; the number of network passes is ``max(count)``, each over the rows that still
    have a choice to make.  With ``trace`` (see :func:`sample_traced`) the draw's own
    log-probabilities are recorded, and ``reference``'s for the same tokens.
    """
    # the reference is scored at the model's precision (see sample_traced)
    with _weights_cast_once(x, bf16):
        return _fill_in_order(model, x, seq, start, count, temperature, generator, trajectory,
                              top_p, constraint, bf16, trace, reference)


def _fill_in_order(model, x, seq, start, count, temperature, generator, trajectory, top_p,
                   constraint, bf16, trace, reference) -> torch.Tensor:
    rows = torch.arange(x.shape[0], device=x.device)
    steps = int(count.max()) if count.numel() else 0
    # A constraint that can answer token by token (``constraint.checks``) is asked only about
    # the tokens a nucleus may draw; tracing records the whole mask, so it asks for that.
    by_token = (constraint is not None and hasattr(constraint, "checks") and trace is None
                and (temperature <= 0 or top_p < 1.0))
    for t in range(steps):
        active = t < count  # (n,)
        pos = seq.gather(1, (start + t).clamp(max=seq.shape[1] - 1).unsqueeze(1)).squeeze(1)  # (n,)
        tok = x[rows, pos].clone()
        need = active
        if by_token:
            checks: list = [None] * x.shape[0]
            act = active.nonzero().squeeze(1)
            for b, c in zip(act.tolist(), constraint.checks(x[act], pos[act], model.mask_id)):
                checks[b] = c
            forced = torch.tensor([isinstance(c, int) for c in checks], device=x.device)
            if forced.any():
                tok[forced] = torch.tensor([c for c in checks if isinstance(c, int)],
                                           device=x.device)
            need = active & ~forced
        elif constraint is not None:
            allowed = _allowed(constraint, x, pos, model.mask_id)
            # A row allowed one token draws it with probability one: no network pass (the
            # pads after a molecule's end, for example).
            forced = allowed.sum(dim=-1) == 1
            tok = torch.where(active & forced, allowed.float().argmax(dim=-1), tok)
            need = active & ~forced
        idx = need.nonzero().squeeze(1)
        if trace is not None:
            trace.step[rows[active], pos[active]] = t
            if constraint is not None:
                trace.allowed[rows[active], pos[active]] = allowed[active]
        if idx.numel():
            logits = _conditional_at(model, x[idx], pos[idx], bf16)
            if by_token:
                tok[idx] = _draw_checked(logits, temperature, generator, top_p,
                                         [checks[b] for b in idx.tolist()])
            else:
                if constraint is not None:
                    logits = logits.masked_fill(~allowed[idx], float("-inf"))
                tok[idx] = _draw(logits, temperature, generator, top_p)  # (n_need,)
            if trace is not None:
                ref = None
                if reference is not None:
                    ref = _conditional_at(reference, x[idx], pos[idx], bf16)
                    if constraint is not None:
                        ref = ref.masked_fill(~allowed[idx], float("-inf"))
                trace.record(idx, pos[idx], tok[idx], logits, ref)
        x[rows, pos] = tok
        if trajectory is not None:
            trajectory.append(x.clone())
    return x


@torch.no_grad()
def sample(
    model,
    n: int,
    order="random",
    template: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    top_p: float = 1.0,
    per_pass: int = 1,
    constraint=None,
    bf16: bool = False,
):
    """Draw ``n`` sequences from ``p_φ`` in any order.

    Args:
        model: a :class:`~mam_core.model.MaM`.
        n: number of samples.
        order: ``"random"``, ``"l2r"``, ``"r2l"``, ``"confidence"`` (the most certain masked
            position first, decided at each step) or a permutation tensor ``(D,)``/``(n, D)``.
            With a template, only its masked positions are visited, in this order.
        template: ``(D,)`` or ``(n, D)`` ids; observed (non-mask) positions are kept exactly
            and the mask-id positions are sampled.
        temperature: softmax temperature (``0`` = greedy).
        top_p: nucleus sampling; keep the most likely tokens covering this probability mass.
        per_pass: ``"confidence"`` order only: positions filled per forward pass (faster,
            approximate above 1).
        constraint: optional ``constraint(x, pos, mask_id) -> (n, K) bool``: the tokens allowed
            at the position about to be filled (e.g. a syntax); the conditional is renormalised
            over them.  The engine does not know what they mean.
        bf16: run the network in bfloat16 (see :func:`mam_core.core.model.bf16_is_faster`):
            about twice as fast where it is faster at all; the conditionals move by a few thousandths of
            a nat of KL (``bench/app_speed.py`` prints it).
        seed / generator: for reproducible draws.
        return_trajectory: also return the list of ``(n, D)`` states after each filled position.
    Returns:
        ``(n, D)`` long tensor of ids in ``0..K-1`` (and the trajectory if asked).
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    _check_top_p(top_p)
    if per_pass != 1 and not (isinstance(order, str) and order in DYNAMIC_ORDERS):
        raise ValueError("per_pass > 1 needs the 'confidence' order")
    dev = model.device
    gen = make_generator(seed, dev, generator)
    if template is None:
        x = model.empty(n)
    else:
        t = model.check_input(template)
        if t.shape[0] not in (1, n):
            raise ValueError(f"template has {t.shape[0]} rows; expected 1 or n={n}")
        x = t.expand(n, -1).clone()
    trajectory: list | None = [x.clone()] if return_trajectory else None
    was_training = model.training
    model.eval()
    try:
        if isinstance(order, str) and order in DYNAMIC_ORDERS:
            x = fill_by_confidence(model, x, temperature, gen, top_p, trajectory, per_pass,
                                   constraint, bf16)
        else:
            orders = make_orders(order, n, model.D, dev, gen)
            seq, count = restrict_order(orders, x == model.mask_id)
            start = torch.zeros_like(count)
            x = fill_in_order(
                model, x, seq, start, count, temperature, gen, trajectory, top_p, constraint, bf16
            )
    finally:
        model.train(was_training)
    return (x, trajectory) if return_trajectory else x


@torch.no_grad()
def censor_and_resample(
    model,
    x: torch.Tensor,
    k: int,
    order="random",
    frozen: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Block-Gibbs move on persistent chains (DESIGN §2a): mask the last ``k`` positions of an
    order and resample them one by one from ``p_φ``.

    Args:
        x: ``(B, D)`` complete sequences (ids ``0..K-1``).
        k: block size (paper: 4); clipped to the number of free positions.
        frozen: optional ``(D,)`` or ``(B, D)`` bool, positions that are never censored (a
            fixed substructure).
    Returns:
        A new ``(B, D)`` tensor; ``x`` is not modified.
    """
    x = model.check_input(x, allow_mask=False).clone()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    B, D = x.shape
    dev = x.device
    gen = make_generator(seed, dev, generator)
    free = torch.ones_like(x, dtype=torch.bool)
    if frozen is not None:
        free = ~torch.as_tensor(frozen, dtype=torch.bool, device=dev).expand(B, D)
    orders = make_orders(order, B, D, dev, gen)
    seq, n_free = restrict_order(orders, free)  # free positions first, in order
    count = n_free.clamp(max=k)
    start = n_free - count  # the last `count` free positions of the order
    steps = torch.arange(k, device=dev)  # censor the whole block first, in one scatter
    block = seq.gather(1, (start[:, None] + steps).clamp(max=D - 1))  # (B, k)
    in_block = steps < count[:, None]  # (B, k)
    x[torch.arange(B, device=dev)[:, None].expand_as(block)[in_block], block[in_block]] = model.mask_id
    was_training = model.training
    model.eval()
    try:
        return fill_in_order(model, x, seq, start, count, temperature, gen)
    finally:
        model.train(was_training)


@dataclass
class DrawTrace:
    """What a policy gradient needs to know about an exact ancestral draw (:func:`sample_traced`).

    Attributes:
        log_q: ``(n,)`` log-probability of each row under the distribution it was drawn from
            (the model's conditionals, renormalised by the constraint where there is one).
        log_ref: ``(n,)`` the same for a reference model on the same tokens and constraint, or
            ``None``.
        step: ``(n, D)`` long, the step at which each position was filled; ``-1`` for
            positions that were given (a template). The context of position ``d`` is every
            position with a smaller step.
        chosen: ``(n, D)`` bool, positions that were drawn from a real choice (not given, not
            forced by the constraint): the terms of ``log_q`` that depend on the network.
        allowed: ``(n, D, K)`` bool, the tokens the constraint allowed at each position (all
            true without a constraint).
    """

    log_q: torch.Tensor
    log_ref: torch.Tensor | None
    step: torch.Tensor
    chosen: torch.Tensor
    allowed: torch.Tensor

    @classmethod
    def empty(cls, n: int, D: int, K: int, device, reference: bool) -> "DrawTrace":
        z = torch.zeros(n, device=device)
        return cls(z, z.clone() if reference else None,
                   torch.full((n, D), -1, dtype=torch.long, device=device),
                   torch.zeros(n, D, dtype=torch.bool, device=device),
                   torch.ones(n, D, K, dtype=torch.bool, device=device))

    def record(self, idx, pos, tok, logits, ref_logits) -> None:
        col = tok[:, None]
        self.log_q[idx] += F.log_softmax(logits.float(), dim=-1).gather(1, col).squeeze(1)
        if self.log_ref is not None:
            self.log_ref[idx] += F.log_softmax(ref_logits.float(), dim=-1).gather(1, col).squeeze(1)
        self.chosen[idx, pos] = True

    def context(self, x: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, mask_id: int):
        """``(m, D)``: row ``rows[i]`` of ``x`` as it was just before ``pos[i]`` was drawn."""
        visible = self.step[rows] < self.step[rows, pos][:, None]
        return torch.where(visible, x[rows], mask_id)


@torch.no_grad()
def sample_traced(
    model,
    n: int,
    order="l2r",
    template: torch.Tensor | None = None,
    constraint=None,
    reference=None,
    generator: torch.Generator | None = None,
    bf16: bool = False,
) -> tuple[torch.Tensor, DrawTrace]:
    """Exact draws from ``p_φ`` (temperature 1, no truncation) in a fixed ``order``, with their
    :class:`DrawTrace`: each row's log-probability under the sampler and, when ``reference`` is
    given, under the reference model's conditionals in the same order and constraint.

    Policy-gradient fine-tuning needs both: the draw is the distribution being trained, and
    ``log q − log q_ref`` is the exact log-ratio to the model it started from, at the cost of
    one reference pass per sampling pass.

    ``bf16`` runs both networks under bfloat16 autocast (about twice as fast where the hardware
    has fast bfloat16 arithmetic).  The reference is always scored at the sampler's precision:
    a reference that is a copy of the sampler then gives ``log q − log q_ref = 0`` exactly,
    rather than the rounding difference between two precisions summed over ~50 tokens.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    if isinstance(order, str) and order in DYNAMIC_ORDERS:
        raise ValueError("a traced draw needs a fixed order (l2r, r2l, random or a permutation)")
    dev = model.device
    gen = make_generator(None, dev, generator)
    x = model.empty(n) if template is None else model.check_input(template).expand(n, -1).clone()
    trace = DrawTrace.empty(n, model.D, model.K, dev, reference is not None)
    orders = make_orders(order, n, model.D, dev, gen)
    seq, count = restrict_order(orders, x == model.mask_id)
    modules = [model] + ([reference] if reference is not None else [])
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        x = fill_in_order(model, x, seq, torch.zeros_like(count), count, 1.0, gen, None, 1.0,
                          constraint, bf16, trace, reference)
    finally:
        for m, flag in zip(modules, was_training):
            m.train(flag)
    return x, trace
