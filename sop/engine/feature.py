"""Everything the SOP engine adds to the service: its API routes, job kinds, recurring tick, tables
and `wecom-assistant sop` (the guides' router is handlers/guide_tasks.py)."""

from bot.wiring import Feature
from sop.engine import api, cli, models, tick
from sop.engine.config import SopConfig

ROUTES = [api.create_sop, api.update_sop, api.list_sops, api.get_sop, api.pause_sop, api.resume_sop,
          api.dry_run_sop, api.preview_step, api.sop_stats]
JOBS = {
    tick.TICK_JOB: tick.tick_job,
    tick.DIGEST_JOB: tick.digest_job,
    tick.PUSH_JOB: tick.push_job,
    tick.REPLY_JOB: tick.reply_job,
}
FEATURE = Feature("sop.engine", routes=ROUTES, jobs=list(JOBS.values()), cron=[tick.TICK_CRON], models=[models],
                  commands=[cli.sop_group], configs=[SopConfig])
