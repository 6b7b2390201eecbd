"""Our studies in optuna-dashboard (served for real on loopback) and rejected trials in NSGA-II.

The dashboard test serves a real search's SQLite study with optuna-dashboard's WSGI app through
``wsgiref`` on 127.0.0.1 (a free port, one thread, shut down after) and reads its JSON API, the
same JSON its web page draws from.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import optuna_dashboard  # the test extra installs it: a missing dashboard fails here, not skips
import pytest
from optuna.trial import TrialState

from search_spaces import params_from_config, run_search
from search_spaces._dashboard import (
    DASHBOARD_CONSTRAINTS_KEY,
    RejectionAwareNSGAIISampler,
    is_rejected,
    publish_outcome,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # no access log on the test output
        pass


@contextmanager
def serve_dashboard(storage_url: str):
    """optuna-dashboard on 127.0.0.1 (port chosen by the OS); yields its base URL."""
    app = optuna_dashboard.wsgi(storage_url)
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def user_attrs(trial_json: dict) -> dict[str, str]:
    return {a["key"]: a["value"] for a in trial_json["user_attrs"]}


def test_dashboard_shows_constraints_and_outcomes_of_a_real_search(tmp_path, tiny_search, tiny_space):
    study_dir = tmp_path / "limit"
    limit = 120_000
    run_search(tiny_search(study_dir, trials=0, max_params=limit))  # the study and the enqueued reference
    url = f"sqlite:///{study_dir / 'study.db'}"
    study = optuna.load_study(study_name=study_dir.name, storage=url)
    wide = tiny_space.smallest_config().replace(conv_widths=(16, 24, 32), token_widths=(48, 64), mlp_ratio=2.0)
    study.enqueue_trial(params_from_config(wide, tiny_space))  # over the limit: rejected before training
    study.enqueue_trial(params_from_config(tiny_space.smallest_config(), tiny_space))
    run_search(tiny_search(study_dir, trials=2, max_params=limit))

    with serve_dashboard(url) as base:
        studies = get_json(f"{base}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == study_dir.name)
        detail = get_json(f"{base}/api/studies/{study_id}")
    trials = sorted(detail["trials"], key=lambda t: t["number"])
    assert [t["state"] for t in trials] == ["Complete", "Pruned", "Complete"]
    reference, rejected, small = trials
    # Every trial of a constrained study shows its constraint values; > 0 is a violation.
    assert len(reference["constraints"]) == 1 and reference["constraints"][0] > 0  # paper: 1.9M > 120k
    assert len(rejected["constraints"]) == 1 and rejected["constraints"][0] > 0
    assert small["constraints"] and all(v <= 0 for v in small["constraints"])
    # Why each trial ended, and which constraint each value is, in the user attributes it shows.
    assert [user_attrs(t)["outcome"] for t in trials] == ["complete", "rejected", "complete"]
    assert json.loads(user_attrs(rejected)["constraints"].replace("'", '"'))["max_params"] > 0
    # Optuna itself still sees the named constraints, and the same feasibility.
    stored = optuna.load_study(study_name=study_dir.name, storage=url).trials
    assert stored[1].constraints["max_params"] == pytest.approx(rejected["constraints"][0])
    assert stored[1].system_attrs[DASHBOARD_CONSTRAINTS_KEY] == rejected["constraints"]


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    """A toy two-objective problem with a cost constraint, recorded as a search trial records it."""
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    error = None
    try:
        trial.set_constraint("max_cost", x + y - 1.0)  # feasible when x + y <= 1
        if x + y > 1.0:
            trial.set_user_attr("rejected", "cost over the limit")
            raise optuna.TrialPruned("rejected")
        return x, y
    except optuna.TrialPruned as exc:
        error = exc
        raise
    finally:
        publish_outcome(trial, error)


def test_nsga2_counts_rejected_trials_into_generations_as_infeasible():
    seeds = dict(population_size=4, seed=3)
    ours = optuna.create_study(directions=["maximize", "maximize"], sampler=RejectionAwareNSGAIISampler(**seeds))
    ours.optimize(_objective, n_trials=24)
    rejected = [t for t in ours.trials if is_rejected(t)]
    assert rejected and all(t.constraints["max_cost"] > 0 for t in rejected)
    sampler = ours.sampler
    key = sampler._get_generation_key()
    # The rejected trials fill their generation like the others: 24 trials = 6 generations of 4.
    assert max(t.system_attrs[key] for t in ours.trials) == 5
    population = sampler.get_population(ours, 1)
    assert len(population) == 4 and all(t.state == TrialState.COMPLETE for t in population)
    # Ranked behind every feasible trial: the elite of a generation keeps the feasible ones first.
    elite = sampler.select_parent(ours, 2)
    feasible = [all(v <= 0 for v in t.constraints.values()) for t in elite]
    assert feasible == sorted(feasible, reverse=True)

    # Optuna's own NSGA-II ignores them: with the same draws its generation 0 stays open longer.
    plain = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.NSGAIISampler(**seeds))
    plain.optimize(_objective, n_trials=24)
    plain_key = plain.sampler._get_generation_key()
    assert max(t.system_attrs[plain_key] for t in plain.trials) < 5


def test_outcome_names_failures_and_early_stops(tmp_path: Path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", directions=["maximize"])

    def objective(trial: optuna.Trial) -> float:
        error = None
        try:
            if trial.number == 0:
                trial.set_user_attr("early_stopped", True)
                raise optuna.TrialPruned("early stop")
            if trial.number == 1:
                raise RuntimeError("diverged")
            if trial.number == 2:
                trial.set_user_attr("rejected", "impossible widths")  # no cost: an invalid architecture
                raise optuna.TrialPruned("rejected")
            return 1.0
        except BaseException as exc:
            error = exc
            raise
        finally:
            publish_outcome(trial, error)

    study.optimize(objective, n_trials=4, catch=(RuntimeError,))
    outcomes = [t.user_attrs["outcome"] for t in study.trials]
    assert outcomes == ["early-stopped", "failed", "rejected", "complete"]
    assert study.trials[2].constraints["valid_architecture"] == 1.0  # a violation the sampler sees
    assert DASHBOARD_CONSTRAINTS_KEY not in study.trials[0].system_attrs  # unconstrained: nothing to show
