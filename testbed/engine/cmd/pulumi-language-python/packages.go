package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

// Which resource plugins a program needs, from the Python packages installed in its environment,
// as the upstream host reports them: `pulumi about` lists them, `pulumi install` and the engine's
// automatic download (where there is a network) fetch them before the program runs.
//
// A package counts when it ships a pulumi-plugin.json (the generated SDKs do) or, failing that,
// when its name starts with "pulumi-". The file's `resource: false` means "no plugin"; its name
// and version default to the package's name without "pulumi-" and the package's version.

// notPlugins are Pulumi packages whose names look like a provider SDK's but that have no plugin.
var notPlugins = map[string]bool{"pulumi-policy": true, "pulumi-esc-sdk": true}

// pluginJSONScript prints, for each distribution named on its command line, the path of the
// pulumi-plugin.json among its installed files ("" when it has none), as one JSON object.
const pluginJSONScript = `import importlib.metadata as md, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        files = md.distribution(name).files or []
        paths = [str(md.distribution(name).locate_file(f)) for f in files if f.name == "pulumi-plugin.json"]
    except Exception:
        paths = []
    found[name] = min(paths, key=len) if paths else ""
print(json.dumps(found))
`

// requiredPackages lists the resource plugins the packages of the environment need.
func requiredPackages(ctx context.Context, tc toolchain.Toolchain) ([]*pulumirpc.PackageDependency, error) {
	pkgs, err := tc.ListPackages(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("cannot list the Python packages: %w", err)
	}
	var names []string
	for _, p := range pkgs {
		if !notPlugins[p.Name] {
			names = append(names, p.Name)
		}
	}
	paths := map[string]string{}
	if len(names) > 0 {
		cmd, err := tc.Command(ctx, append([]string{"-c", pluginJSONScript}, names...)...)
		if err != nil {
			return nil, err
		}
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("cannot look for pulumi-plugin.json in the Python packages: %w", err)
		}
		if err := json.Unmarshal(out, &paths); err != nil {
			return nil, fmt.Errorf("cannot read the pulumi-plugin.json paths %q: %w", out, err)
		}
	}
	deps := []*pulumirpc.PackageDependency{}
	for _, p := range pkgs {
		if notPlugins[p.Name] {
			continue
		}
		var meta *plugin.PulumiPluginJSON
		if path := paths[p.Name]; path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			meta = &plugin.PulumiPluginJSON{}
			if err := json.Unmarshal(b, meta); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		if dep := packageDependency(p, meta); dep != nil {
			deps = append(deps, dep)
		}
	}
	return deps, nil
}

// packageDependency is the plugin a package needs, or nil when it needs none (or its version
// cannot be told from the package's).
func packageDependency(p plugin.DependencyInfo, meta *plugin.PulumiPluginJSON) *pulumirpc.PackageDependency {
	if meta == nil && !strings.HasPrefix(p.Name, "pulumi-") {
		return nil
	}
	dep := &pulumirpc.PackageDependency{Kind: "resource"}
	if meta != nil {
		if !meta.Resource {
			return nil
		}
		dep.Name, dep.Version, dep.Server = meta.Name, meta.Version, meta.Server
		if pz := meta.Parameterization; pz != nil {
			dep.Parameterization = &pulumirpc.PackageParameterization{Name: pz.Name, Version: pz.Version, Value: pz.Value}
		}
	}
	if dep.Name == "" {
		dep.Name = strings.TrimPrefix(p.Name, "pulumi-")
	}
	if dep.Version == "" {
		v, ok := semverOf(p.Version)
		if !ok {
			logging.V(5).Infof("no plugin version for package %s %s", p.Name, p.Version)
			return nil
		}
		dep.Version = v
	}
	if !strings.HasPrefix(dep.Version, "v") {
		dep.Version = "v" + dep.Version
	}
	return dep
}

var pep440 = regexp.MustCompile(`^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(a|b|rc)(\d+))?$`)

// semverOf turns a plain PEP 440 release (1.2, 1.2.3, 1.2.3rc1) into the plugin's semver;
// anything fancier (post, dev, epochs) is not guessed.
func semverOf(v string) (string, bool) {
	m := pep440.FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	parts := []string{m[1], m[2], m[3]}
	for i, s := range parts {
		if s == "" {
			parts[i] = "0"
		}
	}
	out := strings.Join(parts, ".")
	if m[4] != "" {
		out += "-" + map[string]string{"a": "alpha", "b": "beta", "rc": "rc"}[m[4]] + "." + m[5]
	}
	return out, true
}
