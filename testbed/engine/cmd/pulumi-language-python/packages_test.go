package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

// A package's plugin as upstream derives it: pulumi-plugin.json first, else the name.
func TestPackageDependency(t *testing.T) {
	dep := func(name, version string, meta *plugin.PulumiPluginJSON) string {
		d := packageDependency(plugin.DependencyInfo{Name: name, Version: version}, meta)
		if d == nil {
			return "none"
		}
		return d.Kind + " " + d.Name + " " + d.Version + " " + d.Server
	}
	for _, tc := range []struct {
		name, version string
		meta          *plugin.PulumiPluginJSON
		want          string
	}{
		{"pulumi-command", "1.2.1", &plugin.PulumiPluginJSON{Resource: true, Name: "command", Version: "1.2.1"},
			"resource command v1.2.1 "},
		{"pulumi-aws", "7.51.1", nil, "resource aws v7.51.1 "},
		{"pulumi-x", "2.0", &plugin.PulumiPluginJSON{Resource: true, Server: "https://example.invalid"},
			"resource x v2.0.0 https://example.invalid"},
		{"pulumi-random", "4.1.0rc2", nil, "resource random v4.1.0-rc.2 "},
		{"pulumi-dev", "1.0.0.dev3", nil, "none"},
		{"pulumi-nothing", "1.0.0", &plugin.PulumiPluginJSON{Resource: false}, "none"},
		{"requests", "2.32.0", nil, "none"},
		{"vendored", "0.1.0", &plugin.PulumiPluginJSON{Resource: true, Name: "thing"}, "resource thing v0.1.0 "},
	} {
		if got := dep(tc.name, tc.version, tc.meta); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.name, tc.version, got, tc.want)
		}
	}
}

// Against the project's own virtualenv (when there is one): the plugins its SDKs need, and
// not pulumi itself nor pulumi-policy.
func TestRequiredPackagesOfTheProjectVenv(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, ".venv", "bin", "python")); err != nil {
		t.Skip("no .venv in the repository (make venv)")
	}
	tc, err := toolchain.ResolveToolchain(toolchain.PythonOptions{
		Toolchain: toolchain.Pip, Root: root, ProgramDir: root, Virtualenv: ".venv",
	})
	if err != nil {
		t.Fatal(err)
	}
	deps, err := requiredPackages(context.Background(), tc)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range deps {
		got[d.Name] = d.Version
	}
	if got["command"] != "v1.2.1" || got["aws"] == "" {
		t.Errorf("plugins %v: want command v1.2.1 and aws", got)
	}
	if _, ok := got["policy"]; ok {
		t.Errorf("pulumi-policy has no plugin: %v", got)
	}
}
