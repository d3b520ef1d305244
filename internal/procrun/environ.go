package procrun

import (
	"os"
	"slices"
	"strings"
)

// Credentials are the variables of bmc's environment that hold its own
// credentials for Azure Batch and storage: account keys, and the secrets
// of the Microsoft Entra ID sign-in the Azure SDK reads (a service
// principal's secret or certificate password, a user's password). A task
// on Batch never gets them, so a task run here does not either: a spec
// sees the same variables on both backends, and a task cannot use, or
// print to its logs, the keys of the account that runs it. A task whose
// own env sets one gets it.
var Credentials = []string{
	"AZURE_BATCH_ACCESS_KEY",
	"AZURE_STORAGE_CONNECTION_STRING",
	"AZURE_STORAGE_KEY",
	"AZURE_STORAGE_SAS_TOKEN",
	"AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"AZURE_PASSWORD",
}

// Environ is bmc's environment as tasks start from it: less its
// Credentials and the variables named in hide.
func Environ(hide ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(Credentials, k) || slices.Contains(hide, k)
	})
}
