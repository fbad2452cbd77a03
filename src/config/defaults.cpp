// The embedded default configuration and the built-in contract and pipeline it uses. They are
// what `sluiced` runs with no --config, and what `sluiced --demo` feeds.
#include "config/builtin.h"
#include "config/config.h"

namespace sluice::config {

const char* const kEmbeddedConfig = R"INI(# sluiced embedded default configuration
[service]
state_dir = sluice-data
workers = 2

[ingest]
pull = tcp://127.0.0.1:7400
router = tcp://127.0.0.1:7401

[privacy]
master_key_file = master.key
master_key_credential = master.key

[pipeline]
contracts = builtin:
pipelines = builtin:

[metrics]
listen = 127.0.0.1:9464
)INI";

const char* const kBuiltinContract = R"JSON({
  "ref": "acme/checkout/1.0.0",
  "key_field": "session_id",
  "data_subject_field": "customer_id",
  "retention_days": 30,
  "fields": {
    "session_id":  {"type": "string",  "required": true, "pii": 0},
    "customer_id": {"type": "string",  "pii": 1},
    "email":       {"type": "string",  "pii": 2, "pattern": "^[^@]+@[^@]+$"},
    "ip":          {"type": "string",  "pii": 2},
    "country":     {"type": "string",  "required": true, "pattern": "^[A-Z]{2}$"},
    "device":      {"type": "string"},
    "total":       {"type": "number",  "required": true},
    "items":       {"type": "integer"}
  }
})JSON";

const char* const kBuiltinPipeline = R"JSON({
  "contract": "acme/checkout/1.0.0",
  "outputs": [
    {"name": "analytics", "type": "granular", "purposes": [1, 2],
     "mask": {"fields": ["email"], "algorithm": "hmac-sha256"}}
  ],
  "aggregations": [
    {"name": "revenue_by_country", "window": "1m", "group_by": ["country"],
     "metrics": ["count", "sum(total)", "distinct(customer_id)"],
     "allowed_lateness": "30s", "min_group_size": 5}
  ]
})JSON";

}  // namespace sluice::config
