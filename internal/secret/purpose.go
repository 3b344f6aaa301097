package secret

// Purpose names what a sealed value is for. It is bound to the value as
// associated data: a value sealed for one purpose cannot be opened as
// another, so every purpose is listed here, once, and both the code that
// seals a value and the code that opens it use the same constant.
//
// The strings are stored implicitly in every sealed value in the database:
// changing one makes the values sealed under it unreadable.
type Purpose string

const (
	// PurposeAccessKey seals the secret of an API access key (root keys,
	// RAM users' keys, `certfleet account create`).
	PurposeAccessKey Purpose = "access-key-secret"
	// PurposeCertKey seals an uploaded certificate's private key.
	PurposeCertKey Purpose = "cert-key"
	// PurposeAccessSecret seals a CloudAccess secret (SSH key, webhook token).
	PurposeAccessSecret Purpose = "cloud-access-secret"
	// PurposeConfigSecret seals the value of a Config key a product
	// description marks Secret (resource and CloudAccess Configs: SealConfig).
	PurposeConfigSecret Purpose = "config-secret"
	// PurposePrevious seals a worker's recorded previous deployment state.
	PurposePrevious Purpose = "worker-previous"
	// PurposeTOTP seals a console user's TOTP second-factor secret.
	PurposeTOTP Purpose = "console-totp"
)
