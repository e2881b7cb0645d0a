"""Schedules for the KL weight."""


def linear_warmup(step: int, warmup_steps: int) -> float:
    """KL weight rising linearly from 0 to 1 over ``warmup_steps`` optimizer steps.

    Bowman et al. 2016 ("Generating Sentences from a Continuous Space") and Sonderby et
    al. 2016 (Ladder VAE) anneal the KL term this way to avoid posterior collapse early on.
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)
