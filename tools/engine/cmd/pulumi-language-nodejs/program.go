package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// program is where a Pulumi program lives and how Pulumi.yaml asks to run it.
type program struct {
	rootDir string         // the folder of Pulumi.yaml
	dir     string         // the folder the program's entry point is resolved from
	entry   string         // absolute path of the file or folder Node loads
	options map[string]any // Pulumi.yaml runtime options
}

func programFromRequest(req *pulumirpc.RunRequest) (program, error) {
	info := req.GetInfo()
	if info == nil {
		return program{}, errors.New("Run: the engine sent no program info (info); it is older than this host supports")
	}
	if info.GetProgramDirectory() == "" {
		return program{}, errors.New("Run: info.program_directory is empty")
	}
	p := program{
		rootDir: info.GetRootDirectory(),
		dir:     info.GetProgramDirectory(),
		options: info.GetOptions().AsMap(),
	}
	// An entry point of "." means the folder itself: Node's require() then
	// honours that folder's package.json "main".
	p.entry = p.dir
	if entry := info.GetEntryPoint(); entry != "" && entry != "." {
		p.entry = filepath.Join(p.dir, entry)
	}
	return p, nil
}

// runEnvironment passes the stack's configuration the way @pulumi/pulumi
// reads it at start-up, plus the runtime options that change how it loads code.
func runEnvironment(req *pulumirpc.RunRequest, options map[string]any) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("serializing config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing config secret keys: %w", err)
	}

	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
		"PULUMI_NODEJS_TYPESCRIPT="+fmt.Sprint(optionBool(options, "typescript", true)),
	)
	if tsconfig, ok := options["tsconfig"].(string); ok && tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+tsconfig)
	}
	return env, nil
}

// nodeArgs returns the extra node flags of the "nodeargs" runtime option.
func nodeArgs(options map[string]any) []string {
	if raw, ok := options["nodeargs"].(string); ok {
		return strings.Fields(raw)
	}
	return nil
}

func optionBool(options map[string]any, name string, fallback bool) bool {
	switch v := options[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	default:
		return fallback
	}
}
