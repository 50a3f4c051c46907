"""Graph API (Marketing API) constants: levels, report times, windows, object fields, limits."""

from __future__ import annotations

# Meta serves insights for 37 months back (a range starting earlier is refused).
MAX_MONTHS_BACK = 37
LEVELS = ("ad", "adset", "campaign", "account")
REPORT_TIMES = ("impression", "conversion", "mixed", "lifetime")
ATTRIBUTION_WINDOWS = (
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "1d_ev",
    "dda",
    "default",
    "skan_view",
    "skan_click",
)
# The ids and names each level can return (a level cannot return objects below it).
LEVEL_OBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "account": (),
    "campaign": ("campaign_id", "campaign_name"),
    "adset": ("campaign_id", "campaign_name", "adset_id", "adset_name"),
    "ad": ("campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name"),
}
ALL_OBJECT_FIELDS = LEVEL_OBJECT_FIELDS["ad"]
# Every effective_status of each edge: Meta hides ARCHIVED and DELETED objects by default,
# but their history is in the insights, so listings ask for all of them.
ALL_STATUSES: dict[str, tuple[str, ...]] = {
    "campaigns": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"),
    "adsets": (
        "ACTIVE",
        "PAUSED",
        "DELETED",
        "CAMPAIGN_PAUSED",
        "ARCHIVED",
        "IN_PROCESS",
        "WITH_ISSUES",
    ),
    "ads": (
        "ACTIVE",
        "PAUSED",
        "DELETED",
        "PENDING_REVIEW",
        "DISAPPROVED",
        "PREAPPROVED",
        "PENDING_BILLING_INFO",
        "CAMPAIGN_PAUSED",
        "ARCHIVED",
        "ADSET_PAUSED",
        "IN_PROCESS",
        "WITH_ISSUES",
    ),
}
