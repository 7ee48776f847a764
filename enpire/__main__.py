"""`python -m enpire [overrides]`: run a research session (or a sweep of them with -m).

Exit codes: 0 finished (/done met or budget spent), 2 invalid spec or overrides (nothing ran),
3 integrity breach, 1 anything else.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from enpire import CONFIG_DIR
from enpire.plugins import PluginError
from enpire.spec.errors import EXIT_INTEGRITY, EXIT_INVALID_SPEC, IntegrityError, SpecError
from enpire.spec.load import spec_from_config
from enpire.spec.preflight import INFO_FLAGS, preflight, split_argv
from enpire.spec.search_path import install as install_search_path

log = logging.getLogger("enpire")


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> int:
    from enpire.loop import SessionContext, run_session  # heavy imports only once a session really runs

    if mp.get_start_method(allow_none=True) not in (None, *mp.get_all_start_methods()):
        # A joblib (loky) sweep worker sets the default start method to 'loky'; station processes
        # would inherit that name and die on start ("cannot find context for 'loky'").
        mp.set_start_method(None, force=True)
    hc = HydraConfig.get()
    overrides = tuple(hc.overrides.task)
    spec = spec_from_config(cfg, overrides)
    if spec.resume:  # continue a session: its ORIGINAL spec, refused (exit 2) if /done or safety code changed,
        from enpire.track.resume_spec import resume_spec  # exit 3 if the stored spec does not match its fingerprint

        try:
            spec = resume_spec(spec)
        except SpecError as error:
            print(f"enpire: {error.render()}", file=sys.stderr)
            sys.exit(EXIT_INVALID_SPEC)
        except IntegrityError as error:
            print(f"enpire: {error}", file=sys.stderr)
            sys.exit(EXIT_INTEGRITY)
    multirun = hc.mode == RunMode.MULTIRUN
    context = SessionContext(
        run_dir=hc.runtime.output_dir,
        sweep_id=hc.sweep.dir if multirun else None,
        job_num=hc.job.num if multirun else None,
        argv=tuple(sys.argv[1:]),
    )
    code = run_session(spec, context)
    if code and not multirun:
        sys.exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _, flags, _ = split_argv(argv)
    try:
        # --cfg/--help print a composed config without running anything: it must compose, and
        # a composition error is still exit 2 rather than Hydra's exit 1.
        preflight(argv, compose_only=bool(flags & INFO_FLAGS))
    except SpecError as error:
        print(f"enpire: {error.render()}", file=sys.stderr)
        return EXIT_INVALID_SPEC
    except IntegrityError as error:  # resume= of a session whose stored spec was edited since its launch
        print(f"enpire: {error}", file=sys.stderr)
        return EXIT_INTEGRITY
    except PluginError as error:  # an installed plugin that does not load or contradicts another: nothing ran
        print(f"enpire: {error}", file=sys.stderr)
        return EXIT_INVALID_SPEC
    sys.argv = [sys.argv[0], *argv]
    install_search_path()  # plugins' config dirs (the shipped tasks' folders included) on Hydra's search path
    _app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
