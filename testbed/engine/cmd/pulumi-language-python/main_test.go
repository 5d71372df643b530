package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/protobuf/types/known/structpb"
)

// envValue returns the value of KEY in a list of KEY=VALUE strings.
func envValue(t *testing.T, env []string, key string) string {
	t.Helper()
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	t.Fatalf("%s not set in %v", key, env)
	return ""
}

// A stack with no configuration once made the SDK crash on `null`: it must get `{}` and `[]`.
func TestConfigEnvOfStackWithoutConfig(t *testing.T) {
	env, err := configEnv(&pulumirpc.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := envValue(t, env, "PULUMI_CONFIG"); got != "{}" {
		t.Errorf("PULUMI_CONFIG = %q, want {}", got)
	}
	if got := envValue(t, env, "PULUMI_CONFIG_SECRET_KEYS"); got != "[]" {
		t.Errorf("PULUMI_CONFIG_SECRET_KEYS = %q, want []", got)
	}
}

// Configuration values and the list of secret keys reach the SDK intact, as JSON.
func TestConfigEnvCarriesValuesAndSecretKeys(t *testing.T) {
	req := &pulumirpc.RunRequest{
		Config:           map[string]string{"odoo:users": "60", "odoo:adminPassword": "s3cr=t"},
		ConfigSecretKeys: []string{"odoo:adminPassword"},
	}
	env, err := configEnv(req)
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]string
	if err := json.Unmarshal([]byte(envValue(t, env, "PULUMI_CONFIG")), &config); err != nil {
		t.Fatal(err)
	}
	if config["odoo:users"] != "60" || config["odoo:adminPassword"] != "s3cr=t" {
		t.Errorf("config round trip lost values: %v", config)
	}
	var keys []string
	if err := json.Unmarshal([]byte(envValue(t, env, "PULUMI_CONFIG_SECRET_KEYS")), &keys); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"odoo:adminPassword"}) {
		t.Errorf("secret keys = %v", keys)
	}
}

// The shim parses flags with argparse, then takes the program and its arguments positionally:
// flags must come first, empty ones must be left out, dry_run must be spelled true/false.
func TestExecArgsOrderAndFlags(t *testing.T) {
	req := &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1",
		Project:        "odoo",
		Stack:          "small",
		Pwd:            "/p",
		DryRun:         true,
		Parallel:       16,
		Info:           &pulumirpc.ProgramInfo{RootDirectory: "/p", EntryPoint: "."},
		Args:           []string{"extra"},
	}
	got := execArgs("/bin/shim", "127.0.0.1:2", "", req)
	want := []string{
		"/bin/shim", "--monitor", "127.0.0.1:1", "--engine", "127.0.0.1:2", "--project", "odoo",
		"--root_directory", "/p", "--stack", "small", "--pwd", "/p", "--dry_run", "true",
		"--parallel", "16", ".", "extra",
	}
	if !slices.Equal(got, want) {
		t.Errorf("execArgs =\n %v\nwant\n %v", got, want)
	}
	req.DryRun = false
	if got := execArgs("/bin/shim", "e", "", req); !slices.Contains(got, "false") {
		t.Errorf("an update must pass --dry_run false: %v", got)
	}
}

// Pulumi.yaml runtime options: the ones the project uses are read, unsupported ones fail loudly
// instead of being ignored.
func TestPythonOptions(t *testing.T) {
	info := func(opts map[string]any) *pulumirpc.ProgramInfo {
		s, err := structpb.NewStruct(opts)
		if err != nil {
			t.Fatal(err)
		}
		return &pulumirpc.ProgramInfo{RootDirectory: "/r", ProgramDirectory: "/r", Options: s}
	}
	got, err := pythonOptions(info(map[string]any{"toolchain": "pip", "virtualenv": ".venv"}), false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Toolchain != toolchain.Pip || got.Virtualenv != ".venv" || got.Root != "/r" {
		t.Errorf("pythonOptions = %+v", got)
	}
	if _, err := pythonOptions(info(map[string]any{"toolchain": "conda"}), false); err == nil {
		t.Error("an unknown toolchain must be an error")
	}
	if _, err := pythonOptions(info(map[string]any{"typechecker": "mypy"}), false); err == nil {
		t.Error("typechecker is not implemented and must be refused")
	}
	if _, err := pythonOptions(info(map[string]any{"virtualenv": 3}), false); err == nil {
		t.Error("a non-string virtualenv must be an error")
	}
	plugin, err := pythonOptions(info(map[string]any{}), true)
	if err != nil {
		t.Fatal(err)
	}
	if plugin.Virtualenv != "venv" {
		t.Errorf("a plugin without virtualenv must default to venv, got %q", plugin.Virtualenv)
	}
	program, err := pythonOptions(&pulumirpc.ProgramInfo{RootDirectory: "/r"}, false)
	if err != nil || program.Virtualenv != "" {
		t.Errorf("a program without options must use the ambient Python: %+v, %v", program, err)
	}
}
