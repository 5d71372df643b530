// Package local implements `command:local:Command` of odoo-pulumi's stand-in for
// pulumi-command: commands run on the machine that runs Pulumi.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"odoo-pulumi/testbed/command-provider/internal/run"
)

// Command is `command:local:Command`.
type Command struct{}

// Logging is `command:local:Logging`: which output streams go to the engine's log.
type Logging string

// Values lists the enum's values, as upstream.
func (Logging) Values() []infer.EnumValue[Logging] {
	return []infer.EnumValue[Logging]{
		{Name: "Stdout", Value: "stdout", Description: "Capture stdout in logs but not stderr"},
		{Name: "Stderr", Value: "stderr", Description: "Capture stderr in logs but not stdout"},
		{Name: "StdoutAndStderr", Value: "stdoutAndStderr", Description: "Capture stdout and stderr in logs"},
		{Name: "None", Value: "none", Description: "Capture no logs"},
	}
}

// CommandInputs are the inputs, named as upstream's schema.
type CommandInputs struct {
	Create                 *string           `pulumi:"create,optional"`
	Update                 *string           `pulumi:"update,optional"`
	Delete                 *string           `pulumi:"delete,optional"`
	Stdin                  *string           `pulumi:"stdin,optional"`
	Environment            map[string]string `pulumi:"environment,optional"`
	Triggers               []any             `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	Dir                    *string           `pulumi:"dir,optional"`
	Interpreter            []string          `pulumi:"interpreter,optional"`
	Logging                *Logging          `pulumi:"logging,optional"`
	AddPreviousOutputInEnv *bool             `pulumi:"addPreviousOutputInEnv,optional"`
	ArchivePaths           []string          `pulumi:"archivePaths,optional"`
	AssetPaths             []string          `pulumi:"assetPaths,optional"`
}

// CommandOutputs are the inputs plus what the last run printed.
type CommandOutputs struct {
	CommandInputs
	Stdout string `pulumi:"stdout"`
	Stderr string `pulumi:"stderr"`
}

// Annotate describes the resource.
func (c *Command) Annotate(a infer.Annotator) {
	a.Describe(&c, "A command run locally (odoo-pulumi's stand-in for pulumi-command's "+
		"local.Command). Nothing runs on preview or refresh.")
}

// Annotate describes the inputs.
func (c *CommandInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Create, "The command to run on create.")
	a.Describe(&c.Update, "The command to run on update; when unset, create runs instead.")
	a.Describe(&c.Delete, "The command to run on delete.")
	a.Describe(&c.Stdin, "Pass a string to the command's process as standard in.")
	a.Describe(&c.Environment, "Additional environment variables available to the command's process.")
	a.Describe(&c.Triggers, "Trigger a resource replacement on changes to any of these values.")
	a.Describe(&c.Dir, "The directory from which to run the command; defaults to Pulumi's working directory.")
	a.Describe(&c.Interpreter, `The program and arguments to run the command; defaults to ["/bin/sh", "-c"].`)
	a.Describe(&c.Logging, "Which output streams go to the log while the command runs.")
	a.Describe(&c.AddPreviousOutputInEnv, "Pass the previous stdout and stderr as "+
		"PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR. Defaults to true.")
	a.Describe(&c.ArchivePaths, "Not supported by odoo-pulumi's stand-in (rejected).")
	a.Describe(&c.AssetPaths, "Not supported by odoo-pulumi's stand-in (rejected).")
}

func check(in CommandInputs) error {
	if len(in.ArchivePaths) > 0 || len(in.AssetPaths) > 0 {
		return errors.New("archivePaths and assetPaths are not supported by odoo-pulumi's stand-in command provider")
	}
	return nil
}

// Create runs `create` (not on preview).
func (Command) Create(ctx context.Context, req infer.CreateRequest[CommandInputs]) (
	infer.CreateResponse[CommandOutputs], error,
) {
	if err := check(req.Inputs); err != nil {
		return infer.CreateResponse[CommandOutputs]{}, err
	}
	state := CommandOutputs{CommandInputs: req.Inputs}
	id := run.NewID(req.Name)
	if req.DryRun {
		return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, nil
	}
	out, err := runLocal(ctx, req.Inputs, req.Inputs.Create, nil)
	if err != nil {
		return infer.CreateResponse[CommandOutputs]{}, err
	}
	state.Stdout, state.Stderr = out.Stdout, out.Stderr
	return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, nil
}

// Update runs `update`, or `create` when update is unset.
func (Command) Update(ctx context.Context, req infer.UpdateRequest[CommandInputs, CommandOutputs]) (
	infer.UpdateResponse[CommandOutputs], error,
) {
	if err := check(req.Inputs); err != nil {
		return infer.UpdateResponse[CommandOutputs]{}, err
	}
	state := CommandOutputs{CommandInputs: req.Inputs, Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	if req.DryRun {
		return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
	}
	prev := &run.Output{Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	out, err := runLocal(ctx, req.Inputs, run.Pick(req.Inputs.Update, req.Inputs.Create), prev)
	if err != nil {
		return infer.UpdateResponse[CommandOutputs]{}, err
	}
	state.Stdout, state.Stderr = out.Stdout, out.Stderr
	return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
}

// Delete runs `delete` when set.
func (Command) Delete(ctx context.Context, req infer.DeleteRequest[CommandOutputs]) (infer.DeleteResponse, error) {
	prev := &run.Output{Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	_, err := runLocal(ctx, req.State.CommandInputs, req.State.Delete, prev)
	return infer.DeleteResponse{}, err
}

func runLocal(ctx context.Context, in CommandInputs, cmd *string, prev *run.Output) (run.Output, error) {
	if cmd == nil || *cmd == "" {
		return run.Output{}, nil
	}
	sel, err := run.Select((*string)(in.Logging))
	if err != nil {
		return run.Output{}, err
	}
	interp := in.Interpreter
	if len(interp) == 0 {
		interp = []string{"/bin/sh", "-c"}
	}
	args := append(append([]string{}, interp[1:]...), *cmd)
	c := exec.CommandContext(ctx, interp[0], args...)
	// The command and its children are one process group, stopped together on cancel.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }
	c.WaitDelay = 10 * time.Second
	if in.Dir != nil {
		c.Dir = *in.Dir
	}
	c.Env = os.Environ()
	for _, env := range []map[string]string{in.Environment, run.PreviousEnv(in.AddPreviousOutputInEnv, prev)} {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.Env = append(c.Env, k+"="+env[k])
		}
	}
	if in.Stdin != nil && *in.Stdin != "" {
		c.Stdin = strings.NewReader(*in.Stdin)
	}
	capture := run.NewCapture(sel, p.GetLogger(ctx).InfoStatus)
	c.Stdout, c.Stderr = capture.Stdout(), capture.Stderr()
	err = c.Run()
	capture.Flush()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (command interrupted)", ctx.Err())
		}
		return run.Output{}, run.CommandError(err, *cmd, capture)
	}
	return run.Output{Stdout: capture.StdoutString(), Stderr: capture.StderrString()}, nil
}
