// pulumi-resource-command: odoo-pulumi's own stand-in for the pulumi-command provider
// (https://github.com/pulumi/pulumi-command) at version 1.2.1, written from its documented
// behaviour because neither its Go module nor its release binary can be fetched on the
// project's machines. It implements what odoo-pulumi uses: command:remote:Command,
// command:remote:CopyToRemote and command:local:Command. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"odoo-pulumi/testbed/command-provider/local"
	"odoo-pulumi/testbed/command-provider/remote"
)

// name is the provider's package name: the Python SDK's resources are `command:*`.
const name = "command"

// version is stamped by testbed/scripts/build-engine (-X main.version=1.2.1), the version the
// pulumi-command Python SDK asks the engine for.
var version = "1.2.1"

// replaceProperties are the inputs whose change replaces the resource instead of updating
// it (every resource here has `triggers`).
var replaceProperties = map[string]bool{"triggers": true}

func newProvider() (p.Provider, error) {
	prov, err := infer.NewProviderBuilder().
		// testbed/scripts/engine-env recognises the stand-ins it installed before it wrote marker
		// files by this name: keep it.
		WithDisplayName("Command (odoo-pulumi stand-in)").
		WithDescription("odoo-pulumi's stand-in for the pulumi-command provider: run commands "+
			"locally or over SSH and copy files over SFTP.").
		WithResources(
			infer.Resource(remote.Command{}),
			infer.Resource(remote.CopyToRemote{}),
			infer.Resource(local.Command{}),
		).
		Build()
	if err != nil {
		return p.Provider{}, err
	}
	return withReplaceOnTriggers(prov), nil
}

// topLevel is the input a detailed-diff path belongs to: "triggers[0]" -> "triggers",
// "connection.host" -> "connection".
func topLevel(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// withReplaceOnTriggers marks every change under `triggers` as a replacement. The inferred
// diff reports nested paths ("triggers[0]") and only looks the schema's replaceOnChanges
// up for top-level names, so it would call a changed trigger an update.
func withReplaceOnTriggers(prov p.Provider) p.Provider {
	inner := prov.Diff
	prov.Diff = func(ctx context.Context, req p.DiffRequest) (p.DiffResponse, error) {
		resp, err := inner(ctx, req)
		if err != nil {
			return resp, err
		}
		for k, d := range resp.DetailedDiff {
			if !replaceProperties[topLevel(k)] {
				continue
			}
			switch d.Kind {
			case p.Add:
				d.Kind = p.AddReplace
			case p.Delete:
				d.Kind = p.DeleteReplace
			case p.Update:
				d.Kind = p.UpdateReplace
			}
			resp.DetailedDiff[k] = d
		}
		return resp, nil
	}
	return prov
}

func main() {
	prov, err := newProvider()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-resource-command:", err)
		os.Exit(1)
	}
	if err := prov.Run(context.Background(), name, version); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-resource-command:", err)
		os.Exit(1)
	}
}
