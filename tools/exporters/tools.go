//go:build tools

// The exporters the stack deploys beside PostgreSQL and Redis, built from the Go module proxy at
// the versions pinned in versions.env (scripts/exporters-build.sh), so the tests run the real
// exporters against the real servers and check the series that rules and dashboards query.
package tools

import (
	_ "github.com/oliver006/redis_exporter"
	_ "github.com/prometheus-community/postgres_exporter/cmd/postgres_exporter"
)
