"""The supervisor's decisions (usecases.supervision) without Ray: time passed in, observations as data."""

from __future__ import annotations

from usecases.supervision import (
    Action,
    ActorState,
    Observation,
    Role,
    Supervision,
    SupervisionRules,
    pipeline_specs,
)

SPECS = pipeline_specs("t-", consumers=2, shards=2, persisters=1)
ALIVE = Observation(ActorState.ALIVE, loop_running=True, pid=10)


def all_alive(**changes: Observation) -> dict[str, Observation]:
    observed = {}
    for spec in SPECS:
        loop = True if spec.role in (Role.CONSUMER, Role.SCORER) else None
        observed[spec.name] = Observation(ActorState.ALIVE, loop_running=loop, pid=100 + len(observed))
    observed.update({name.replace("_", "-"): seen for name, seen in changes.items()})
    return observed


def test_a_healthy_pipeline_needs_nothing():
    supervision = Supervision(SPECS)
    assert supervision.reconcile(all_alive(), now_s=0.0) == []
    assert supervision.health(all_alive())["status"] == "ok"


def test_the_actors_are_named_by_role_and_created_scorer_first_consumers_last():
    assert [s.name for s in SPECS] == [
        "t-risk-scorer", "t-shard-0", "t-shard-1", "t-persistence-0", "t-consumer-0", "t-consumer-1",
    ]


def test_a_missing_actor_is_created_and_the_consumers_rebound_to_it():
    supervision = Supervision(SPECS)
    decisions = supervision.reconcile(all_alive(**{"t_shard_1": Observation(ActorState.DEAD)}), now_s=0.0)
    assert [(d.action, d.name) for d in decisions] == [
        (Action.CREATE, "t-shard-1"), (Action.REBIND_CONSUMERS, "*"),
    ]


def test_a_dead_consumer_is_created_alone():
    supervision = Supervision(SPECS)
    decisions = supervision.reconcile(all_alive(**{"t_consumer_0": Observation(ActorState.DEAD)}), now_s=0.0)
    assert [(d.action, d.name) for d in decisions] == [(Action.CREATE, "t-consumer-0")]


def test_a_restarting_actor_is_left_to_ray_within_the_grace_period():
    supervision = Supervision(SPECS, SupervisionRules(restarting_grace_s=30.0))
    restarting = all_alive(**{"t_persistence_0": Observation(ActorState.RESTARTING)})
    assert supervision.reconcile(restarting, now_s=0.0) == []
    assert supervision.reconcile(restarting, now_s=29.0) == []
    assert supervision.health(restarting)["status"] == "degraded"


def test_an_actor_that_never_comes_back_is_recreated_after_the_grace_period():
    supervision = Supervision(SPECS, SupervisionRules(restarting_grace_s=30.0))
    restarting = all_alive(**{"t_persistence_0": Observation(ActorState.RESTARTING)})
    supervision.reconcile(restarting, now_s=0.0)
    decisions = supervision.reconcile(restarting, now_s=30.0)
    assert (Action.CREATE, "t-persistence-0") in [(d.action, d.name) for d in decisions]
    assert "not answering for 30 s" in decisions[0].reason


def test_a_crash_looping_actor_is_recreated_with_growing_backoff():
    supervision = Supervision(SPECS, SupervisionRules(recreate_backoff_s=1.0, recreate_backoff_max_s=4.0))
    dead = all_alive(**{"t_consumer_1": Observation(ActorState.DEAD)})
    created_at = [t for t in (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 9.0, 12.0, 13.0)
                  if supervision.reconcile(dead, now_s=t)]
    assert created_at == [0.0, 1.0, 3.0, 9.0, 13.0]  # waits 1, 2, 4, then the 4 s cap


def test_a_loop_that_ended_is_started_again():
    supervision = Supervision(SPECS)
    idle = all_alive(**{"t_risk_scorer": Observation(ActorState.ALIVE, loop_running=False, pid=7)})
    assert [(d.action, d.name) for d in supervision.reconcile(idle, now_s=0.0)] == [
        (Action.START_LOOP, "t-risk-scorer"),
    ]


def test_restarts_by_ray_are_counted_for_operators():
    supervision = Supervision(SPECS)
    supervision.reconcile(all_alive(), now_s=0.0)
    supervision.reconcile(all_alive(**{"t_shard_0": Observation(ActorState.RESTARTING)}), now_s=1.0)
    supervision.reconcile(all_alive(**{"t_shard_0": Observation(ActorState.ALIVE, pid=999)}), now_s=2.0)
    again = all_alive(**{"t_shard_0": Observation(ActorState.ALIVE, pid=1234)})  # restarted between two ticks
    supervision.reconcile(again, now_s=3.0)
    assert supervision.health(again)["restarts"] == {"t-shard-0": 2}


def test_a_replaced_scorer_needs_no_rebinding_it_is_found_by_name():
    supervision = Supervision(SPECS)
    decisions = supervision.reconcile(all_alive(**{"t_risk_scorer": Observation(ActorState.DEAD)}), now_s=0.0)
    assert [(d.action, d.name) for d in decisions] == [(Action.CREATE, "t-risk-scorer")]
