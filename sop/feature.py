"""Everything sop/ campaigns and outreach add to the service: API routes, job kinds, tables."""

from bot.wiring import Feature
from sop.campaigns import api as campaigns_api
from sop.campaigns import launch
from sop.campaigns import models as campaigns_models
from sop.outreach import fanout, sync
from sop.outreach import models as outreach_models
from sop.outreach.config import OutreachConfig

ROUTES = [
    campaigns_api.preview_audience, campaigns_api.create_campaign, campaigns_api.list_campaigns,
    campaigns_api.get_campaign, campaigns_api.list_recipients, campaigns_api.approve_campaign,
    campaigns_api.launch_campaign, campaigns_api.cancel_campaign, campaigns_api.remind_campaign,
    campaigns_api.sync_campaign,
]
JOBS = {
    launch.LAUNCH_JOB: launch.launch_job,
    fanout.SEND_JOB: fanout.send_job,
    fanout.NOTIFY_JOB: fanout.notify_guide_job,
    sync.SYNC_JOB: sync.sync_job,
}
FEATURE = Feature("sop", routes=ROUTES, jobs=list(JOBS.values()), models=[campaigns_models, outreach_models],
                  configs=[OutreachConfig])
