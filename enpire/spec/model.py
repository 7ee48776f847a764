"""The frozen, typed spec object the rest of the code uses.

Built only from documents that already passed specs/ and the semantic checks, so nothing
here re-checks types or ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from enpire.spec.frozen import FrozenDict, freeze, thaw


@dataclass(frozen=True)
class Range:
    low: float
    high: float


@dataclass(frozen=True)
class Quantity:
    """A named state query of a task, with its range and unit."""

    name: str
    low: float
    high: float
    unit: str
    description: str = ""
    source: FrozenDict | None = None  # `from:` of a quantity declared in yaml (enpire.world.quantities)


@dataclass(frozen=True)
class ResetSpec:
    max_attempts: int
    settle_s: float
    faulty_after: int
    blocked_until: str | None = None  # a file: every reset check fails while it does not exist (a human-reset drill)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    physics_dt: float
    init: FrozenDict  # name -> Range
    reset: ResetSpec
    state_space: FrozenDict  # name -> Quantity
    init_set: FrozenDict = field(default_factory=FrozenDict)  # init name -> `set:` target (world.declarative)
    requires: tuple[str, ...] = ()  # robot capabilities the task needs ("gripper", "dof>=6")
    options: FrozenDict = field(default_factory=FrozenDict)  # task-specific, checked by the plugin schema
    mjcf: str | None = None  # arena of a declarative task (no Python class)
    shaping: tuple[tuple[str, float], ...] = ()  # declarative shaping reward: (quantity, weight)


@dataclass(frozen=True)
class ControllerSpec:
    kind: str
    control_hz: float
    stiffness_pos: float
    stiffness_rot: float
    damping_ratio: float
    nullspace_stiffness: float
    gravity_compensation: bool


@dataclass(frozen=True)
class GripperSpec:
    kind: str
    max_force_n: float


@dataclass(frozen=True)
class RobotSpec:
    name: str
    kind: str
    description: str
    dof: int
    capabilities: tuple[str, ...]
    base_pos: tuple[float, float, float]
    reach_m: float
    actuator_force_range_nm: tuple[float, ...]
    gripper: GripperSpec
    controller: ControllerSpec
    adapter: str = "mujoco"  # the hardware adapter (enpire.hardware.registry): a name or "module:Class"


@dataclass(frozen=True)
class WorkspaceBox:
    low: tuple[float, float, float]
    high: tuple[float, float, float]


@dataclass(frozen=True)
class SafetySpec:
    torque_limit_nm: float
    joint_position_margin_rad: float
    joint_velocity_limit_rad_s: float
    workspace: WorkspaceBox
    contact_force_limit_n: float


@dataclass(frozen=True)
class Condition:
    quantity: str
    op: str  # ">=" or "<="
    value: float

    def holds(self, x: float) -> bool:
        return x >= self.value if self.op == ">=" else x <= self.value


@dataclass(frozen=True)
class Phase:
    """A stage of an attempt (done.phases), entered once its condition first holds. Failure attribution only:
    phases never change a verdict. The first phase of a list may have no condition (entered at the start)."""

    name: str
    condition: Condition | None = None
    missed: str = ""  # how a person says it when an attempt never got here ("handle never grasped")


@dataclass(frozen=True)
class ClassifierSpec:
    """done.classifier: the classifier verifier's detector (enpire.detector, docs/verifiers.md)."""

    weights: str | None = None  # None: the task's shipped detector (<task folder>/detector.pt)
    rate_hz: float | None = None  # None: the rate the detector was trained at
    threshold: float | None = None  # None: the detector's calibrated threshold


@dataclass(frozen=True)
class DoneSpec:
    name: str
    conditions: tuple[Condition, ...]
    hold_s: float
    allow_safety_stop: bool
    time_limit_s: float
    attempts: int
    min_success_rate: float
    window: int
    verifier: str = "predicate"  # a verifier kind (enpire.plugins: verifiers)
    phases: tuple[Phase, ...] = ()  # stages an attempt goes through, for failure attribution (never the verdict)
    classifier: ClassifierSpec = ClassifierSpec()  # done.verifier=classifier: which detector, at what rate


@dataclass(frozen=True)
class BudgetSpec:
    iterations: int
    trials: int
    robot_seconds: float
    wall_clock_s: float
    tokens: int
    trainer_seconds: float


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: float
    low: float
    high: float
    unit: str = ""
    description: str = ""
    scale: str = "linear"


@dataclass(frozen=True)
class PolicySpec:
    kind: str
    name: str
    action_mode: str
    params: tuple[ParamSpec, ...]
    source: str | None = None
    train: FrozenDict = field(default_factory=FrozenDict)
    sandbox: FrozenDict = field(default_factory=FrozenDict)

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.params}


@dataclass(frozen=True)
class AgentSpec:
    kind: str
    trials_per_candidate: int
    reevaluate_trials: int
    options: FrozenDict  # the whole agent group, kind-specific keys included

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str
    start_method: str
    trial_timeout_s: float
    max_restarts: int
    address: str | None = None  # executor=ray: cluster address; None starts a local Ray instance
    num_cpus_per_station: float = 1.0  # executor=ray: CPUs reserved per station actor
    options: FrozenDict = field(default_factory=FrozenDict)  # the whole group (a plugin executor's own keys too)


@dataclass(frozen=True)
class TrackingSpec:
    uri: str
    experiment: str | None
    artifact_root: str
    flush_every_s: float
    open: str = "first"  # first | background (enpire.track.deferred)


@dataclass(frozen=True)
class VideoSpec:
    enabled: bool
    width: int
    height: int
    fps: int
    camera: str | None
    render: str = "background"  # background | on_demand | inline (docs/videos.md)
    iterations: str = "kept"  # kept | all


@dataclass(frozen=True)
class RecordSpec:
    """`record:` which trials keep per-step trajectories (docs/data.md), frames per second, session size budget."""

    trajectories: str = "none"  # none | failures | successes | all
    frames_hz: float = 0.0  # 0 = no camera frames
    max_mb: float = 1024.0

    @property
    def enabled(self) -> bool:
        return self.trajectories != "none"

    def keeps(self, passed: bool) -> bool:
        """Does a trial whose verifier passed an attempt (`passed`) or not keep its trajectory?"""
        if self.trajectories == "all":
            return True
        if self.trajectories == "successes":
            return passed
        return self.trajectories == "failures" and not passed


@dataclass(frozen=True)
class StationSpec:
    """`station:` the station owner's real-motion gates (docs/stations.md, "The adapter interface"); not part of
    safety_sha256: they grant or withhold motion, they do not change what the envelope enforces."""

    dry_run: bool = False  # no command leaves the station; every trial ends `estopped` (no evidence)
    confirm_motion: bool = False  # required before an adapter declaring physical=True may move


@dataclass(frozen=True)
class DynamicsSpec:
    """`dynamics:` how the stations' physics differ from the task's nominal model (docs/twin.md): a sim-to-sim
    gap for the digital twin (the fleet runs these, the twin always runs the nominal ones)."""

    name: str = "nominal"
    friction: float = 1.0  # sliding friction of every geom, times
    mass: float = 1.0  # mass and inertia of the task's bodies (not the robot's), times
    latency_steps: int = 0  # control steps between the policy's action and the robot applying it
    obs_noise: float = 0.0  # std of Gaussian noise on every value of the task's observation (m, rad)

    @property
    def nominal(self) -> bool:
        return (self.friction, self.mass, self.latency_steps, self.obs_noise) == (1.0, 1.0, 0, 0.0)


NOMINAL_DYNAMICS = DynamicsSpec()


@dataclass(frozen=True)
class ScreenSpec:
    """`screen:` checks a new candidate passes before it gets robot time (docs/twin.md)."""

    twin: str = "none"  # none | sim: params and code candidates run first on simulated twin stations
    trials: int = 2  # twin trials of each new candidate
    min_success: float = 0.5  # twin success rate a candidate needs to reach the fleet
    stations: int = 1  # twin stations (processes of their own; their time is sim-seconds, never robot time)
    dry_check: bool = True  # code candidates: imports, contract and a few steps in the sandbox first
    dry_steps: int = 5  # control steps of the dry check

    @property
    def enabled(self) -> bool:
        return self.twin != "none"


@dataclass(frozen=True)
class Fingerprints:
    done_sha256: str
    safety_sha256: str
    spec_sha256: str


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything a session needs, validated and frozen at launch."""

    task: TaskSpec
    robot: RobotSpec
    safety: SafetySpec
    done: DoneSpec
    budget: BudgetSpec
    agent: AgentSpec
    policy: PolicySpec
    executor: ExecutorSpec
    tracking: TrackingSpec
    fleet: int
    agents: int  # resolved: null in config means one per station
    seed: int
    resume: str | None
    video: VideoSpec
    session_name: str | None
    session_notes: str
    resolved: FrozenDict  # the whole resolved config, as validated
    fingerprints: Fingerprints
    overrides: tuple[str, ...] = ()
    team: tuple[AgentSpec, ...] = ()  # one AgentSpec per agent (len == agents); mixed with `team=[...]`
    determinism: str = "strict"  # strict | fast (enpire.agent.order)
    record: RecordSpec = field(default_factory=RecordSpec)  # per-step trajectories (docs/data.md)
    station: StationSpec = field(default_factory=StationSpec)  # real-motion gates (enpire.hardware.gates)
    dynamics: DynamicsSpec = NOMINAL_DYNAMICS  # the stations' physics against the nominal model (docs/twin.md)
    screen: ScreenSpec = field(default_factory=ScreenSpec)  # dry check and digital twin before robot time

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"enpire/{self.task.name}"

    @property
    def physics_steps_per_control(self) -> int:
        return max(1, round(1.0 / (self.robot.controller.control_hz * self.task.physics_dt)))

    @property
    def control_dt(self) -> float:
        return self.physics_steps_per_control * self.task.physics_dt

    def as_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data."""
        return thaw(self.resolved)


_T = TypeVar("_T")
_EXECUTOR_FIELDS = ("kind", "start_method", "trial_timeout_s", "max_restarts", "address", "num_cpus_per_station")
_NUMBER = {"int": int, "float": float}


def _typed(cls: type[_T], values: dict[str, Any], **extra: Any) -> _T:
    """cls(**values) with numbers converted to the declared field types.

    JSON Schema counts 1000.0 as an integer and 50 as a number, so a valid document may hold
    either; the frozen spec promises the declared Python types.
    """
    kinds = {f.name: _NUMBER.get(str(f.type)) for f in fields(cls)}  # type: ignore[arg-type]
    args = {k: kinds[k](v) if kinds.get(k) and isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in {**values, **extra}.items()}
    return cls(**args)


def _executor_spec(e: dict[str, Any]) -> ExecutorSpec:
    return _typed(ExecutorSpec, {k: v for k, v in e.items() if k in _EXECUTOR_FIELDS}, options=freeze(e))


def _agent_spec(a: dict[str, Any]) -> AgentSpec:
    return AgentSpec(kind=a["kind"], trials_per_candidate=int(a["trials_per_candidate"]),
                     reevaluate_trials=int(a["reevaluate_trials"]), options=freeze(a))


def build(doc: dict[str, Any], fingerprints: Fingerprints, overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    """ExperimentSpec from a resolved document that already passed validation."""
    t, r, s, d, b = doc["task"], doc["robot"], doc["safety"], doc["done"], doc["budget"]
    a, p, e, k, v = doc["agent"], doc["policy"], doc["executor"], doc["tracking"], doc["video"]
    task = TaskSpec(
        name=t["name"], description=t["description"], physics_dt=float(t["physics_dt"]),
        init=FrozenDict({n: Range(float(x["low"]), float(x["high"])) for n, x in t["init"].items()}),
        reset=_typed(ResetSpec, t["reset"]),
        state_space=FrozenDict({
            n: Quantity(n, float(q["low"]), float(q["high"]), q["unit"], q.get("description", ""),
                        freeze(q["from"]) if q.get("from") else None)
            for n, q in t["state_space"].items()
        }),
        init_set=FrozenDict({n: freeze(x["set"]) for n, x in t["init"].items() if x.get("set")}),
        requires=tuple(t.get("requires") or ()), options=freeze(t.get("options") or {}), mjcf=t.get("mjcf"),
        shaping=tuple((str(x["quantity"]), float(x["weight"])) for x in t.get("shaping") or ()),
    )
    robot = RobotSpec(
        name=r["name"], kind=r["kind"], description=r["description"], dof=int(r["dof"]),
        capabilities=tuple(r.get("capabilities") or ()),
        base_pos=tuple(float(x) for x in r["base_pos"]), reach_m=float(r["reach_m"]),  # type: ignore[arg-type]
        actuator_force_range_nm=tuple(float(x) for x in r["actuator_force_range_nm"]),
        gripper=_typed(GripperSpec, r["gripper"]), controller=_typed(ControllerSpec, r["controller"]),
        adapter=str(r.get("adapter") or "mujoco"),
    )
    safety = SafetySpec(
        torque_limit_nm=float(s["torque_limit_nm"]), joint_position_margin_rad=float(s["joint_position_margin_rad"]),
        joint_velocity_limit_rad_s=float(s["joint_velocity_limit_rad_s"]),
        workspace=WorkspaceBox(tuple(map(float, s["workspace"]["low"])), tuple(map(float, s["workspace"]["high"]))),  # type: ignore[arg-type]
        contact_force_limit_n=float(s["contact_force_limit_n"]),
    )
    done = DoneSpec(
        name=d["name"],
        conditions=tuple(Condition(c["quantity"], c["op"], float(c["value"])) for c in d["predicate"]["conditions"]),
        hold_s=float(d["predicate"]["hold_s"]), allow_safety_stop=bool(d["predicate"]["allow_safety_stop"]),
        time_limit_s=float(d["episode"]["time_limit_s"]), attempts=int(d["episode"]["attempts"]),
        min_success_rate=float(d["goal"]["min_success_rate"]), window=int(d["goal"]["window"]),
        verifier=str(d.get("verifier", "predicate")),
        phases=tuple(Phase(str(ph["name"]), Condition(ph["quantity"], ph["op"], float(ph["value"]))
                           if "quantity" in ph else None, str(ph.get("missed") or ""))
                     for ph in d.get("phases") or ()),
        classifier=classifier_spec(d.get("classifier") or {}),
    )
    policy = PolicySpec(
        kind=p["kind"], name=p["name"], action_mode=p["action_mode"],
        params=tuple(_typed(ParamSpec, q, name=n) for n, q in p["params"].items()),
        source=p.get("source"), train=freeze(p.get("train") or {}), sandbox=freeze(p.get("sandbox") or {}),
    )
    agent = _agent_spec(a)
    team = tuple(_agent_spec(m) for m in doc.get("team") or ()) or (agent,) * int(doc["agents"] or doc["fleet"])
    return ExperimentSpec(
        task=task, robot=robot, safety=safety, done=done, budget=_typed(BudgetSpec, b), agent=agent, team=team,
        policy=policy, executor=_executor_spec(e), tracking=_typed(TrackingSpec, k),
        fleet=int(doc["fleet"]), agents=len(team), seed=int(doc["seed"]),
        resume=doc.get("resume"), video=_typed(VideoSpec, v),
        session_name=doc["session"]["name"], session_notes=doc["session"]["notes"],
        resolved=freeze(doc), fingerprints=fingerprints, overrides=tuple(overrides),
        determinism=str(doc.get("determinism", "strict")),
        record=_typed(RecordSpec, doc.get("record") or {}),
        station=_typed(StationSpec, doc.get("station") or {}),
        dynamics=_typed(DynamicsSpec, doc.get("dynamics") or {}),
        screen=_typed(ScreenSpec, doc.get("screen") or {}),
    )


def classifier_spec(c: dict[str, Any]) -> ClassifierSpec:
    return ClassifierSpec(weights=None if c.get("weights") in (None, "") else str(c["weights"]),
                          rate_hz=None if c.get("rate_hz") is None else float(c["rate_hz"]),
                          threshold=None if c.get("threshold") is None else float(c["threshold"]))
