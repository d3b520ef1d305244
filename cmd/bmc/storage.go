package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
)

// openStore picks the store for az:// locations: --storage, then the
// spec's storage block, then a blob account configured in the environment
// (the Azure CLI's variables), then the local folder store under the state
// directory, so that every workload runs with no cloud at all.
func openStore(ctx context.Context, flag string, transfers int, prog *compiler.Program, state string) (blobstage.Store, error) {
	choice := flag
	var accountURL string
	if prog.Storage != nil {
		if choice == "" {
			choice = prog.Storage.Backend
		}
		accountURL = prog.Storage.AccountURL
	}
	local := func() blobstage.Store {
		root, _ := filepath.Abs(filepath.Join(state, "storage"))
		return blobstage.NewLocal(root)
	}
	switch choice {
	case "local":
		return local(), nil
	case "", "azure":
	default:
		return nil, usagef("unknown --storage %q: expected local or azure", choice)
	}
	if accountURL != "" {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %s", accountURL, redact.String(err.Error()))
		}
		return blobstage.NewFromURL(accountURL, cred, blobstage.Options{Parallelism: transfers})
	}
	az, ok, err := blobstage.FromEnv(ctx, blobstage.Options{Parallelism: transfers})
	if err != nil {
		return nil, fmt.Errorf("storage: %s", redact.String(err.Error()))
	}
	if ok {
		return az, nil
	}
	if choice == "azure" {
		return nil, fmt.Errorf("storage azure: no blob account is configured: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_ACCOUNT")
	}
	return local(), nil
}
