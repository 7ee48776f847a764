"""Operations: what a person running a session sees and does.

control (the control channel: a directory of commands, a published state), commands (what a
running session makes of them: commands the loop applies), ctl (`python -m enpire.ctl`, its
command line) and progress (the live display). The station-side estop flag is enpire.world.estop.
"""
