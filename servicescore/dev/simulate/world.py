"""The simulated world in numbers and words: how customers call (channels, priorities, fault
categories, business-hour peaks), how long the work takes, and what people write."""

CHANNELS = {"phone": 38, "chat": 22, "web": 18, "email": 17, "onsite": 5}
PRIORITIES = {"P1": 7, "P2": 28, "P3": 45, "P4": 20}
# category -> (share of tickets, share needing a field visit, median handling hours at P3)
CATEGORIES = {
    "network": (30, 0.25, 4.0),
    "hardware": (22, 0.5, 8.0),
    "software": (22, 0.05, 3.0),
    "billing": (14, 0.0, 2.0),
    "installation": (12, 0.85, 6.0),
}
PRODUCTS = {
    "network": ("Router-AX3000", "Mesh-W6", "企业宽带-100M"),
    "hardware": ("ONT-G2", "STB-4K", "Router-AX3000"),
    "software": ("App-Android", "App-iOS", "云盘企业版"),
    "billing": ("月付套餐", "年付套餐"),
    "installation": ("ONT-G2", "Mesh-W6", "STB-4K"),
}
RESOLUTION_CODES = {
    "network": ("fixed", "config_changed", "workaround", "no_fault_found"),
    "hardware": ("part_replaced", "fixed", "no_fault_found"),
    "software": ("fixed", "config_changed", "customer_education", "workaround"),
    "billing": ("refund", "customer_education", "fixed"),
    "installation": ("fixed", "config_changed"),
}
# relative arrivals per local hour 0..23 and per weekday Mon..Sun
HOUR_WEIGHTS = (0.15, 0.1, 0.08, 0.08, 0.08, 0.12, 0.25, 0.5, 0.9, 1.6, 1.8, 1.7,
                1.0, 1.3, 1.6, 1.6, 1.5, 1.3, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2)
WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.55, 0.45)
TICKETS_PER_ENGINEER_DAY = 6.5
RESPONSE_TARGET_S = {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400}  # kpis.md defaults
RESPONSE_MEDIAN_S = {"P1": 600, "P2": 1800, "P3": 5400, "P4": 18000}
CHANNEL_RESPONSE = {"phone": 0.3, "chat": 0.5, "web": 1.0, "email": 1.5, "onsite": 0.2}
ONSITE_MEDIAN_S = {"P1": 2.5 * 3600, "P2": 5 * 3600, "P3": 16 * 3600, "P4": 40 * 3600}
PRIORITY_HANDLING = {"P1": 0.35, "P2": 0.6, "P3": 1.0, "P4": 1.8}
PRIORITY_ESCALATION = {"P1": 1.8, "P2": 1.2, "P3": 1.0, "P4": 0.6}
SOURCES = {"phone": "callcenter", "chat": "callcenter", "web": "web-portal",
           "email": "mail-gateway", "onsite": "field-app"}
SURVEY_SHARE = 0.6
NPS_RANGE = {5: (8, 10), 4: (7, 9), 3: (5, 8), 2: (2, 6), 1: (0, 4)}  # NPS follows CSAT
DESK_HOURS = (8, 20)  # the service desk works 08:00-20:00 local; only P1 is handled at night
ESCALATION_REASONS = ("需要二线技术支持", "超出一线处理权限", "SLA即将超时",
                      "疑似硬件故障需现场处理",
                      "customer requested a specialist", "known issue, needs vendor ticket")
REOPEN_REASONS = ("问题再次出现", "故障复现，客户要求重新处理", "客户反馈仍无法上网",
                  "fix did not hold", "same error after restart")
COMPLAINT_REASONS = ("服务态度差", "上门迟到", "问题长时间未解决", "多次转接，没人负责",
                     "engineer did not show up", "收费不透明")
SURVEY_COMMENTS = {
    "good": ("工程师很专业，响应很快", "服务态度好，问题一次解决", "上门准时，非常满意",
             "Quick and friendly, thanks!"),
    "fair": ("还可以，但等待时间有点长", "解决了，但沟通不太顺畅", "OK overall"),
    "poor": ("等了很久才有人联系", "问题反复出现，很失望", "多次转接，没人负责",
             "Engineer was late and rude"),
}
ASSESSMENT_COMMENTS = ("工单记录完整规范", "需加强知识库贡献", "团队协作积极", "培训考核优秀",
                       "Good mentoring of new staff", "客户沟通耐心细致")
DAY = 86400
