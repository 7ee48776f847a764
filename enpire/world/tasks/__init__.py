"""Tasks: MJCF arenas beside their code, named state queries, registered by name (base.py)."""

from enpire.world.tasks.base import TASKS, Task, TaskPhysics, load_tasks, make_task, register_task, yaw_quat

__all__ = ["TASKS", "Task", "TaskPhysics", "load_tasks", "make_task", "register_task", "yaw_quat"]
