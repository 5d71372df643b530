// Package remote implements the `command:remote:*` resources of odoo-pulumi's stand-in for
// pulumi-command: Command (run commands over SSH) and CopyToRemote (copy over SFTP).
package remote

import (
	"github.com/pulumi/pulumi-go-provider/infer"
)

// Connection is `command:remote:Connection`: how to reach the host over SSH.
type Connection struct {
	Host               string           `pulumi:"host"`
	Port               *float64         `pulumi:"port,optional"`
	User               *string          `pulumi:"user,optional"`
	Password           *string          `pulumi:"password,optional" provider:"secret"`
	PrivateKey         *string          `pulumi:"privateKey,optional" provider:"secret"`
	PrivateKeyPassword *string          `pulumi:"privateKeyPassword,optional" provider:"secret"`
	AgentSocketPath    *string          `pulumi:"agentSocketPath,optional"`
	DialErrorLimit     *int             `pulumi:"dialErrorLimit,optional"`
	PerDialTimeout     *int             `pulumi:"perDialTimeout,optional"`
	HostKey            *string          `pulumi:"hostKey,optional"`
	Proxy              *ProxyConnection `pulumi:"proxy,optional"`
}

// Annotate gives the schema the upstream descriptions and defaults.
func (c *Connection) Annotate(a infer.Annotator) {
	a.Describe(&c, "Instructions for how to connect to a remote endpoint.")
	a.Describe(&c.Host, "The address of the resource to connect to.")
	a.Describe(&c.Port, "The port to connect to. Defaults to 22.")
	a.SetDefault(&c.Port, float64(defaultPort))
	a.Describe(&c.User, "The user that we should use for the connection. Defaults to root.")
	a.SetDefault(&c.User, defaultUser)
	a.Describe(&c.Password, "The password we should use for the connection.")
	a.Describe(&c.PrivateKey, "The contents of an SSH key to use for the connection. "+
		"This takes preference over the password if provided.")
	a.Describe(&c.PrivateKeyPassword, "The password to use in case the private key is encrypted.")
	a.Describe(&c.AgentSocketPath, "SSH Agent socket path. Default to environment variable SSH_AUTH_SOCK if present.")
	a.Describe(&c.DialErrorLimit, "Max allowed errors on trying to dial the remote host. "+
		"-1 set count to unlimited. Default value is 10.")
	a.SetDefault(&c.DialErrorLimit, defaultDialErrorLimit)
	a.Describe(&c.PerDialTimeout, "Max number of seconds for each dial attempt. 0 implies no maximum. "+
		"Default value is 15 seconds.")
	a.SetDefault(&c.PerDialTimeout, defaultPerDialTimeout)
	a.Describe(&c.HostKey, "The expected host key to verify the server's identity. "+
		"If not provided, the host key will be ignored.")
	a.Describe(&c.Proxy, "The connection settings for the bastion/proxy host "+
		"(not supported by odoo-pulumi's stand-in: rejected).")
}

// ProxyConnection is `command:remote:ProxyConnection`, accepted in the schema only so a
// program that sets it gets a clear error instead of a decoding failure.
type ProxyConnection struct {
	Host               string   `pulumi:"host"`
	Port               *float64 `pulumi:"port,optional"`
	User               *string  `pulumi:"user,optional"`
	Password           *string  `pulumi:"password,optional" provider:"secret"`
	PrivateKey         *string  `pulumi:"privateKey,optional" provider:"secret"`
	PrivateKeyPassword *string  `pulumi:"privateKeyPassword,optional" provider:"secret"`
	AgentSocketPath    *string  `pulumi:"agentSocketPath,optional"`
	DialErrorLimit     *int     `pulumi:"dialErrorLimit,optional"`
	PerDialTimeout     *int     `pulumi:"perDialTimeout,optional"`
	HostKey            *string  `pulumi:"hostKey,optional"`
}

// Annotate describes the type.
func (c *ProxyConnection) Annotate(a infer.Annotator) {
	a.Describe(&c, "Instructions for how to connect to a remote endpoint via a bastion host "+
		"(not supported by odoo-pulumi's stand-in).")
}

// Logging is `command:remote:Logging`: which output streams go to the engine's log.
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
