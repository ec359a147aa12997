// Command genschema writes the files that the provider main embeds: the
// module's schema.json with its version set, and its terraform mapping
// compacted. Usage: go run ./genschema <provider-module-dir> <version> <out-dir>
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: genschema <provider-module-dir> <version> <out-dir>"))
	}
	moduleDir, version, outDir := os.Args[1], os.Args[2], os.Args[3]
	cmdDir := filepath.Join(moduleDir, "cmd", "pulumi-resource-kubernetes")

	var schema map[string]any
	readJSON(filepath.Join(cmdDir, "schema.json"), &schema)
	schema["version"] = version
	writeJSON(filepath.Join(outDir, "schema-embed.json"), schema)

	var mapping any
	readJSON(filepath.Join(cmdDir, "terraform-mapping.json"), &mapping)
	writeJSON(filepath.Join(outDir, "terraform-mapping-embed.json"), mapping)
}

func readJSON(path string, into any) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		fail(fmt.Errorf("%s: %w", path, err))
	}
}

func writeJSON(path string, value any) {
	raw, err := json.Marshal(value)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "genschema:", err)
	os.Exit(1)
}
