# Outputs, in alphabetical order: what to send the platform (POST /credentials, /provider-configs).

output "provider_config" {
  description = "The `aws` object of the AWS provider config."
  value = {
    bucket      = aws_s3_bucket.exports.bucket
    prefix      = var.prefix
    export_name = var.export_name
    export_type = var.export_type
    region      = var.region
  }
}

output "role_arn" {
  description = "The IAM_ROLE credential's role_arn (its external_id is the cvg-... suffix of platform_audience)."
  value       = aws_iam_role.reader.arn
}
