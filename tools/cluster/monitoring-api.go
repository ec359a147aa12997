//go:build tools

// Keeps the prometheus-operator API packages in go.mod: controller-gen reads
// their types to generate the monitoring.coreos.com CRDs at build time.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
)
