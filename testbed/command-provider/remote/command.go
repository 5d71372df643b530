package remote

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"golang.org/x/crypto/ssh"

	"odoo-pulumi/testbed/command-provider/internal/run"
)

// Command is `command:remote:Command`: commands run over SSH on create, update and delete.
type Command struct{}

// CommandInputs are the inputs, named as upstream's schema.
type CommandInputs struct {
	Connection             Connection        `pulumi:"connection" provider:"secret"`
	Environment            map[string]string `pulumi:"environment,optional"`
	Triggers               []any             `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	Create                 *string           `pulumi:"create,optional"`
	Delete                 *string           `pulumi:"delete,optional"`
	Update                 *string           `pulumi:"update,optional"`
	Stdin                  *string           `pulumi:"stdin,optional"`
	Logging                *Logging          `pulumi:"logging,optional"`
	AddPreviousOutputInEnv *bool             `pulumi:"addPreviousOutputInEnv,optional"`
}

// CommandOutputs are the inputs plus what the last run printed.
type CommandOutputs struct {
	CommandInputs
	Stdout string `pulumi:"stdout"`
	Stderr string `pulumi:"stderr"`
}

// Annotate describes the resource and its inputs for the schema.
func (c *Command) Annotate(a infer.Annotator) {
	a.Describe(&c, "A command to run on a remote host over SSH (odoo-pulumi's stand-in for "+
		"pulumi-command's remote.Command). Nothing runs on preview or refresh.")
}

// Annotate describes the inputs.
func (c *CommandInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Connection, "The parameters with which to connect to the remote host.")
	a.Describe(&c.Environment, "Additional environment variables, sent with SSH setenv: "+
		"a variable the server refuses (see AcceptEnv) fails the command.")
	a.Describe(&c.Triggers, "Trigger a resource replacement on changes to any of these values.")
	a.Describe(&c.Create, "The command to run once on resource creation.")
	a.Describe(&c.Delete, "The command to run on resource delete.")
	a.Describe(&c.Update, "The command to run on update; when unset, create runs instead.")
	a.Describe(&c.Stdin, "Pass a string to the command's process as standard in.")
	a.Describe(&c.Logging, "Which of the command's output streams go to the log while it "+
		"runs. Defaults to stdoutAndStderr.")
	a.Describe(&c.AddPreviousOutputInEnv, "Pass the previous stdout and stderr as "+
		"PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR. Defaults to true.")
}

// Annotate describes the outputs.
func (c *CommandOutputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Stdout, "The standard output of the command's process.")
	a.Describe(&c.Stderr, "The standard error of the command's process.")
}

// Create runs `create` (not on preview: stdout and stderr are then unknown).
func (Command) Create(ctx context.Context, req infer.CreateRequest[CommandInputs]) (
	infer.CreateResponse[CommandOutputs], error,
) {
	state := CommandOutputs{CommandInputs: req.Inputs}
	id := run.NewID(req.Name)
	if req.DryRun {
		return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, nil
	}
	out, err := runRemote(ctx, req.Inputs, req.Inputs.Create, nil)
	if err != nil {
		return infer.CreateResponse[CommandOutputs]{}, err
	}
	state.Stdout, state.Stderr = out.Stdout, out.Stderr
	return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, nil
}

// Update runs `update`, or `create` when update is unset. Any input change except
// `triggers` (a replacement) lands here.
func (Command) Update(ctx context.Context, req infer.UpdateRequest[CommandInputs, CommandOutputs]) (
	infer.UpdateResponse[CommandOutputs], error,
) {
	state := CommandOutputs{CommandInputs: req.Inputs, Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	if req.DryRun {
		return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
	}
	prev := &run.Output{Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	out, err := runRemote(ctx, req.Inputs, run.Pick(req.Inputs.Update, req.Inputs.Create), prev)
	if err != nil {
		return infer.UpdateResponse[CommandOutputs]{}, err
	}
	state.Stdout, state.Stderr = out.Stdout, out.Stderr
	return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
}

// Delete runs `delete` when set, with the connection of the last successful run.
func (Command) Delete(ctx context.Context, req infer.DeleteRequest[CommandOutputs]) (infer.DeleteResponse, error) {
	prev := &run.Output{Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	_, err := runRemote(ctx, req.State.CommandInputs, req.State.Delete, prev)
	return infer.DeleteResponse{}, err
}

// runRemote connects and runs cmd (nothing at all when cmd is unset).
func runRemote(ctx context.Context, in CommandInputs, cmd *string, prev *run.Output) (run.Output, error) {
	if cmd == nil || *cmd == "" {
		return run.Output{}, nil
	}
	sel, err := run.Select((*string)(in.Logging))
	if err != nil {
		return run.Output{}, err
	}
	logger := p.GetLogger(ctx)
	client, closeClient, err := dial(ctx, in.Connection, logger.InfoStatus)
	if err != nil {
		return run.Output{}, err
	}
	defer closeClient()
	c := run.NewCapture(sel, logger.InfoStatus)
	err = runSession(ctx, client, *cmd, in.Stdin, in.Environment, run.PreviousEnv(in.AddPreviousOutputInEnv, prev),
		c, logger.Error, logger.Warning)
	if err != nil {
		return run.Output{}, err
	}
	return run.Output{Stdout: c.StdoutString(), Stderr: c.StderrString()}, nil
}

// setenvRefused explains a refused variable in upstream's words (line breaks included).
func setenvRefused(key string) string {
	return fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept\n"+
		"\tthese variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, you could\n"+
		"\tprefix the command itself with the variables in the form 'VAR=value command'", key)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runSession runs cmd in a new session through the server's shell. A variable of
// `environment` the server refuses fails the command; a refused previous-output variable
// is only a warning (upstream's behaviour, pulumi-command #584). Both explain themselves in
// the engine's log (logError, warn), as upstream.
func runSession(
	ctx context.Context, client *ssh.Client, cmd string, stdin *string,
	env, prevEnv map[string]string, c *run.Capture, logError, warn func(string),
) error {
	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("cannot open an SSH session: %w", err)
	}
	defer session.Close()
	for _, k := range sortedKeys(env) {
		if err := session.Setenv(k, env[k]); err != nil {
			if logError != nil {
				logError(setenvRefused(k))
			}
			return fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	for _, k := range sortedKeys(prevEnv) {
		if err := session.Setenv(k, prevEnv[k]); err != nil && warn != nil {
			warn(setenvRefused(k))
		}
	}
	if stdin != nil && *stdin != "" {
		session.Stdin = strings.NewReader(*stdin)
	}
	session.Stdout = c.Stdout()
	session.Stderr = c.Stderr()

	done := make(chan error, 1)
	go func() { done <- session.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		_ = session.Close()
		_ = client.Close()
		err = <-done
		c.Flush()
		return run.CommandError(fmt.Errorf("%w (command interrupted)", ctx.Err()), cmd, c)
	}
	c.Flush()
	if err != nil {
		var exit *ssh.ExitError
		var missing *ssh.ExitMissingError
		if errors.As(err, &exit) || errors.As(err, &missing) {
			return run.CommandError(err, cmd, c)
		}
		return run.CommandError(fmt.Errorf("SSH session failed: %w", err), cmd, c)
	}
	return nil
}
