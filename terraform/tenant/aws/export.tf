# The Data Export: FOCUS 1.2 with AWS columns, or CUR 2.0, daily, Parquet, overwritten per period.
# https://docs.aws.amazon.com/cur/latest/userguide/dataexports-create-standard.html

locals {
  export_query = {
    FOCUS_1_2_AWS = "SELECT * FROM FOCUS_1_2_AWS"
    CUR2          = "SELECT * FROM COST_AND_USAGE_REPORT"
  }
  export_table_configurations = {
    FOCUS_1_2_AWS = { FOCUS_1_2_AWS = { TIME_GRANULARITY = "DAILY" } }
    CUR2 = {
      COST_AND_USAGE_REPORT = {
        TIME_GRANULARITY                      = "DAILY"
        INCLUDE_RESOURCES                     = "TRUE"
        INCLUDE_SPLIT_COST_ALLOCATION_DATA    = "FALSE"
        INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY = "FALSE"
      }
    }
  }
}

resource "aws_bcmdataexports_export" "this" {
  provider = aws.billing
  export {
    name = var.export_name
    data_query {
      query_statement      = local.export_query[var.export_type]
      table_configurations = local.export_table_configurations[var.export_type]
    }
    destination_configurations {
      s3_destination {
        s3_bucket = aws_s3_bucket.exports.bucket
        s3_prefix = var.prefix
        s3_region = var.region
        s3_output_configurations {
          overwrite   = "OVERWRITE_REPORT"
          format      = "PARQUET"
          compression = "PARQUET"
          output_type = "CUSTOM"
        }
      }
    }
    refresh_cadence {
      frequency = "SYNCHRONOUS"
    }
  }
  depends_on = [aws_s3_bucket_policy.exports]
}
