"""The graded questions' draws test what they are meant to test, whatever the seed."""
import numpy as np

from course.questions import a01_integrate_and_fire as a01


def test_the_spike_cap_binds_in_every_draw():
    # an answer that ignores max_spikes_per_step=1 must lose those cases on every grading run
    # (a small scale and step once made the cap irrelevant, and such an answer passed)
    for seed in range(200):
        cases = a01.draw(np.random.default_rng(seed))["q2_if_variants"]
        capped = [c for c in cases if c.get("max_spikes_per_step") == 1]
        assert capped
        for case in capped:
            drive = case["current"].max() * case["scale"] * case["dt"]  # spikes per step
            assert drive > 1.5, (seed, case["scale"], case["dt"])
