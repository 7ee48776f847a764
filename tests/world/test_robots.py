"""The robot configs tell the truth about the MJCF: dof, actuator torque ranges, reach."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from enpire.spec import load_spec
from enpire.world.robots import make_robot
from enpire.world.robots.ik import down_rotation, solve_pose


def _compiled(name: str) -> tuple[mujoco.MjModel, object]:
    b = make_robot(name)
    root = b.build()
    return mujoco.MjModel.from_xml_string(root.to_xml_string(), root.get_assets()), b


@pytest.mark.parametrize("name", ["enarm", "jaco"])
def test_config_matches_mjcf(name: str) -> None:
    spec = load_spec(["task=reach", f"robot={name}"])
    m, b = _compiled(name)
    acts = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in b.arm_actuators]
    assert len(b.arm_joints) == spec.robot.dof
    assert all(m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT and m.actuator_biastype[a] == 0 for a in acts)
    ranges = m.actuator_ctrlrange[acts]
    np.testing.assert_allclose(ranges[:, 1], spec.robot.actuator_force_range_nm)
    np.testing.assert_allclose(ranges[:, 0], -np.array(spec.robot.actuator_force_range_nm))
    # reach: the farthest tool centre point over many joint configurations
    d = mujoco.MjData(m)
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, b.ee_site)
    joints = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in b.arm_joints]
    lo = np.where(m.jnt_limited[joints], m.jnt_range[joints, 0], -np.pi)
    hi = np.where(m.jnt_limited[joints], m.jnt_range[joints, 1], np.pi)
    rng = np.random.default_rng(0)
    far = 0.0
    for q in rng.uniform(lo, hi, size=(4000, len(joints))):
        d.qpos[m.jnt_qposadr[joints]] = q
        mujoco.mj_kinematics(m, d)
        far = max(far, float(np.linalg.norm(d.site_xpos[site] - spec.robot.base_pos)))
    assert far <= spec.robot.reach_m + 1e-3, f"{name}: tool reaches {far:.3f} m > reach_m {spec.robot.reach_m}"
    assert far >= spec.robot.reach_m - 0.08, f"{name}: reach_m {spec.robot.reach_m} overstates ({far:.3f} m seen)"


def test_enarm_reach_is_exact_straight_up() -> None:
    spec = load_spec(["task=reach"])
    m, b = _compiled("enarm")
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)  # q = 0 points the arm straight up: the farthest point
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, b.ee_site)
    assert np.linalg.norm(d.site_xpos[site]) == pytest.approx(spec.robot.reach_m, abs=1e-6)


@pytest.mark.parametrize("name", ["enarm", "jaco"])
def test_home_posture_points_down_over_the_table(name: str) -> None:
    """Resets start at home: the tool centre near (0.4, 0, 0.25) with the gripper pointing down, jaws along x."""
    m, b = _compiled(name)
    d = mujoco.MjData(m)
    joints = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in b.arm_joints]
    d.qpos[m.jnt_qposadr[joints]] = b.home_qpos
    mujoco.mj_kinematics(m, d)
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, b.ee_site)
    np.testing.assert_allclose(d.site_xpos[site], [0.4, 0.0, 0.25], atol=0.01)
    np.testing.assert_allclose(d.site_xmat[site].reshape(3, 3), down_rotation(0.0), atol=0.01)


def test_ik_finds_a_downward_posture_within_the_joint_ranges() -> None:
    b = make_robot("jaco")
    res = solve_pose(b, np.array([0.5, 0.1, 0.15]), yaw=0.3, starts=12, seed=1)
    assert res.pos_error_m < 1e-4 and res.axis_error < 1e-3 and res.limit_margin_rad > 0.0
    with pytest.raises(ValueError, match="no posture reaches"):
        solve_pose(b, np.array([2.0, 0.0, 0.2]), starts=3)  # beyond the 1.22 m reach
