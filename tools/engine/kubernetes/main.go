// Command pulumi-resource-kubernetes serves the Kubernetes resource provider
// built from the pulumi-kubernetes provider module. Upstream's own main embeds
// files that `go generate` writes and that the published module lacks, so this
// main embeds the copies that ./genschema writes from the module's schema.json.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version, pulumiSchema, terraformMapping)
}
