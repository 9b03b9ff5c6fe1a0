-- Seva benchmark scenarios for wrk (https://github.com/wg/wrk).
-- Arguments after `--`: scenario token customers conversations agents run_id session
-- Each thread builds its own requests: random customers, conversations and inbox filters, and
-- unique message ids, so every request is one a real client could send.

local next_thread = 1

function setup(thread)
  thread:set("thread_no", next_thread)
  next_thread = next_thread + 1
end

local scenario, customers, conversations, agents, run_id, headers, page_headers
local counter = 0

function init(args)
  scenario = args[1]
  customers = tonumber(args[3])
  conversations = tonumber(args[4])
  agents = tonumber(args[5])
  run_id = args[6]
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  headers = { ["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json" }
  page_headers = { ["Cookie"] = "seva_session=" .. args[7], ["Accept-Language"] = "fa-IR,fa;q=0.9" }
end

local texts = {
  "Where is my order? The tracking page has not changed for three days.",
  "سلام، سفارشم هنوز نرسیده. لطفاً بررسی کنید.",
  "माझी ऑर्डर अजून आली नाही. कृपया तपासा.",
  "मेरा ऑर्डर अभी तक नहीं आया। कृपया जाँच करें।",
}

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Words that occur in the data set's subjects and messages, per language.
local search_terms = {
  search_en = { "parcel", "refund", "tracking", "colour" },
  search_fa = { "بسته", "مرجوعی", "واریز", "رهگیری" },
  search_mr = { "पार्सल", "परतावा", "ट्रॅकिंग", "साडीचा" },
  search_hi = { "पार्सल", "रिफ़ंड", "ट्रैकिंग", "कुर्ती" },
}
for language, terms in pairs(search_terms) do
  for i, term in ipairs(terms) do terms[i] = urlencode(term) end
end

local function inbox_filter()
  local pick = math.random(1, 8)
  if pick == 1 then return "status=open"
  elseif pick == 2 then return "status=open&assignee=" .. math.random(1, agents)
  elseif pick == 3 then return "status=pending"
  elseif pick == 4 then return "status=open&team=" .. math.random(1, 3)
  elseif pick == 5 then return "tag=refund"
  elseif pick == 6 then return "status=open&channel=email"
  elseif pick == 7 then return "status=open&assignee=none"
  else return "status=open,pending&brand=2" end
end

-- The workspace's inbox views and filters, as an agent clicks them.
local function page_filter()
  local pick = math.random(1, 6)
  if pick == 1 then return "view=all"
  elseif pick == 2 then return "view=unassigned"
  elseif pick == 3 then return "view=all&status=pending"
  elseif pick == 4 then return "view=all&channel=email"
  elseif pick == 5 then return "view=all&tag=refund"
  else return "view=all&brand=2&priority=high" end
end

function request()
  counter = counter + 1
  if scenario == "intake" then
    local body = string.format(
      '{"customer":{"email":"c%d@bench.example"},"channel":"email","subject":"Order question %d",' ..
      '"message":{"text":"%s","external_id":"<%s-%d-%d@bench.example>"}}',
      math.random(1, customers), counter, texts[(counter % 4) + 1], run_id, thread_no or 0, counter)
    return wrk.format("POST", "/api/v1/conversations", headers, body)
  elseif scenario == "inbox" then
    return wrk.format("GET", "/api/v1/conversations?limit=25&" .. inbox_filter(), headers)
  elseif scenario == "conversation" then
    return wrk.format("GET", "/api/v1/conversations/" .. math.random(1, conversations), headers)
  elseif scenario == "customer" then
    return wrk.format("GET", "/api/v1/customers/" .. math.random(1, customers), headers)
  elseif scenario == "page_inbox" then
    return wrk.format("GET", "/inbox?" .. page_filter(), page_headers)
  elseif scenario == "kpi_report" then
    -- The last 30 days in Tehran, on the business-hours clock: every KPI with its counts.
    local to = os.date("!%Y-%m-%d", os.time())
    local from = os.date("!%Y-%m-%d", os.time() - 29 * 86400)
    return wrk.format("GET", "/api/v1/reports/kpis?from=" .. from .. "&to=" .. to ..
      "&tz=Asia/Tehran&clock=business", headers)
  elseif scenario == "kpi_dashboard" then
    -- What the dashboard asks: the last 30 days per day, beside the previous 30.
    local to = os.date("!%Y-%m-%d", os.time())
    local from = os.date("!%Y-%m-%d", os.time() - 29 * 86400)
    return wrk.format("GET", "/api/v1/reports/kpis?from=" .. from .. "&to=" .. to ..
      "&tz=Asia/Tehran&clock=business&step=day&compare=previous", headers)
  elseif scenario == "page_dashboard" then
    -- The dashboard page itself (its defaults: the last 30 days, per day, in the user's zone).
    return wrk.format("GET", "/reports", page_headers)
  elseif scenario == "page_customer" then
    return wrk.format("GET", "/customers/" .. math.random(1, customers), page_headers)
  elseif scenario == "segment_count" then
    -- "Spent more than 5,000,000 rials in the last 90 days", counted live over every customer.
    local body = '{"rules":{"all":[{"type":"spent_more_than","currency":"IRR","amount":500000000,"days":90}]}}'
    return wrk.format("POST", "/api/v1/segments/count", headers, body)
  elseif scenario == "page_conversation" then
    return wrk.format("GET", "/conversations/" .. math.random(1, conversations) .. "?view=all", page_headers)
  elseif search_terms[scenario] then
    local terms = search_terms[scenario]
    return wrk.format("GET", "/api/v1/search?q=" .. terms[math.random(1, #terms)], headers)
  end
  error("unknown scenario " .. tostring(scenario))
end

-- The first few failures are printed, so a failing run says why.
local failures_shown = 0
function response(status, headers, body)
  -- A redirect is a failure too: it means the page scenarios' session was refused.
  if status >= 300 and failures_shown < 3 then
    failures_shown = failures_shown + 1
    io.write(string.format("BENCH_FAILURE thread %s status %d: %s\n", tostring(thread_no), status, body))
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
