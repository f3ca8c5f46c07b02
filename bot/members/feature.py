"""What the members feature adds to the service: members, points, coupons, orders, the new-member
benefit, the nightly housekeeping and the 微信客服 answers."""

from bot.api.spec import declared_routes
from bot.customers import benefits
from bot.jobs.registry import declared_jobs
from bot.members import (
                         api,
                         api_coupons,
                         api_orders,
                         coupons,
                         customer_orders,
                         customer_search,
                         housekeeping,
                         models,
                         welcome,
)
from bot.members.chat import answering
from bot.members.config import MembersConfig
from bot.stores.web import COUPON_NAME
from bot.wiring import Feature

FEATURE = Feature(
    "members",
    routes=declared_routes(api, api_coupons, api_orders, customer_search, customer_orders),
    jobs=declared_jobs(welcome, housekeeping, answering),
    cron=[housekeeping.HOUSEKEEPING_CRON],
    models=[models],
    configs=[MembersConfig],
    provides={benefits.NEW_MEMBER_SENTENCE: welcome.new_member_sentence,
              benefits.GRANT_NEW_MEMBER_BENEFITS: welcome.grant_new_member_benefits,
              COUPON_NAME: coupons.template_name},
)
