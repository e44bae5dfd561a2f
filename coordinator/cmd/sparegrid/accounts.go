package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) accountsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accounts",
		Short: "Manage accounts (admin)",
	}
	cmd.AddCommand(a.accountsCreateCommand())
	return cmd
}

func (a *app) accountsCreateCommand() *cobra.Command {
	var req client.CreateAccountRequest
	cmd := &cobra.Command{
		Use:   "create NAME --email EMAIL --role volunteer|maintainer|admin",
		Short: "Create an account and print its API token",
		Long: `Create an account (admin only). The new account's API token is printed
alone on standard output, so it can be piped into a file; the coordinator
shows it this one time only.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			switch req.Role {
			case client.RoleVolunteer, client.RoleMaintainer, client.RoleAdmin:
			default:
				return fmt.Errorf("--role %q: want volunteer, maintainer or admin", req.Role)
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			acct, token, err := c.CreateAccount(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, token)
			fmt.Fprintf(a.stderr, "created account ~%s (%s); its token is shown only this once, keep it safe\n",
				clean(acct.Name), clean(acct.Role))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Email, "email", "", "the account's email address")
	f.StringVar(&req.Role, "role", "", "volunteer, maintainer or admin")
	f.StringVar(&req.DisplayName, "display-name", "", "the account's display name")
	cmd.MarkFlagRequired("email")
	cmd.MarkFlagRequired("role")
	return cmd
}
