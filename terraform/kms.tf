# Cloud KMS: the tenant key ring (keys made and shredded at run time) and the central-data CMEK.

locals {
  # BigQuery CMEK keys must sit in the dataset's location; multi-regions map to KMS's names.
  kms_location = lookup({ US = "us", EU = "europe" }, var.bq_location, var.bq_location)
}

# Per-tenant key-encryption keys are created in this ring by the code
# (GcpKmsCrypto.ensure_tenant_key, with their own 90-day rotation) and shredded on
# offboarding. Terraform owns the ring only, never a tenant key: state would
# otherwise fight the code over keys it creates and destroys.
resource "google_kms_key_ring" "tenant_keys" {
  name       = "${var.prefix}-tenant-keys"
  location   = local.kms_location
  depends_on = [google_project_service.apis]
}

# A separate ring for platform keys, so the roles that shred tenant keys can
# never touch the key that encrypts the central dataset.
resource "google_kms_key_ring" "platform" {
  name       = "${var.prefix}-platform"
  location   = local.kms_location
  depends_on = [google_project_service.apis]
}

# Default encryption of the central dataset: it holds API-key hashes,
# ciphertexts and billing state, so its key is ours to rotate and audit.
resource "google_kms_crypto_key" "central_data" {
  name            = "${var.prefix}-central-data"
  key_ring        = google_kms_key_ring.platform.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days
  version_template {
    algorithm = "GOOGLE_SYMMETRIC_ENCRYPTION"
  }
  lifecycle {
    # Destroying it makes the central dataset unreadable for good.
    prevent_destroy = true
  }
}

# BigQuery's encryption service agent encrypts and decrypts the central dataset's tables.
data "google_bigquery_default_service_account" "bq" {
  project    = var.project_id
  depends_on = [google_project_service.apis]
}

resource "google_kms_crypto_key_iam_member" "bq_central_data" {
  crypto_key_id = google_kms_crypto_key.central_data.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_bigquery_default_service_account.bq.email}"
}

resource "google_kms_key_ring_iam_member" "tenant_keys" {
  for_each    = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "tenant_key_ring" }
  key_ring_id = google_kms_key_ring.tenant_keys.id
  role        = each.value.role
  member      = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
  depends_on  = [google_project_iam_custom_role.custom]
}
