"""Everything sop/ adds to the service, in one place: its API routes, job kinds and routers.

The app imports this module; the integrator can compose from these lists instead.
"""

from bot.customers import tag_mirror
from sop.campaigns import api as campaigns_api
from sop.campaigns import launch
from sop.outreach import fanout, sync

ROUTES = [
    campaigns_api.preview_audience, campaigns_api.create_campaign, campaigns_api.list_campaigns,
    campaigns_api.get_campaign, campaigns_api.list_recipients, campaigns_api.approve_campaign,
    campaigns_api.launch_campaign, campaigns_api.cancel_campaign, campaigns_api.remind_campaign,
    campaigns_api.sync_campaign, tag_mirror.request_resync,
]
JOBS = {
    launch.LAUNCH_JOB: launch.launch_job,
    fanout.SEND_JOB: fanout.send_job,
    fanout.NOTIFY_JOB: fanout.notify_guide_job,
    sync.SYNC_JOB: sync.sync_job,
    tag_mirror.MIRROR_CUSTOMER_JOB: tag_mirror.mirror_customer_job,
    tag_mirror.REFRESH_NAMES_JOB: tag_mirror.refresh_names_job,
    tag_mirror.RESYNC_JOB: tag_mirror.resync_job,
}
