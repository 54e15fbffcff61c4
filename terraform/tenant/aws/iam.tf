# The role the platform assumes: trusted by accounts.google.com for the platform's
# runner identity and your tenant's audience only, read-only on the export's prefix.
# Condition keys: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html
# (for Google tokens with an azp claim, accounts.google.com:aud is azp and :oaud is aud).

data "aws_iam_policy_document" "trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = ["accounts.google.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:aud"
      values   = [var.platform_subject]
    }
    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:sub"
      values   = [var.platform_subject]
    }
    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:oaud"
      values   = [var.platform_audience]
    }
  }
}

data "aws_iam_policy_document" "read_export" {
  statement {
    sid       = "ListTheExport"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.exports.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}/${var.export_name}/*", "${var.prefix}/${var.export_name}/"]
    }
  }
  statement {
    sid       = "ReadTheExport"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.exports.arn}/${var.prefix}/${var.export_name}/*"]
  }
}

resource "aws_iam_role" "reader" {
  name                 = var.role_name
  description          = "Convergence reads the cost export (web identity: the platform's Google runner)."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "read_export" {
  name   = "read-cost-export"
  role   = aws_iam_role.reader.id
  policy = data.aws_iam_policy_document.read_export.json
}
