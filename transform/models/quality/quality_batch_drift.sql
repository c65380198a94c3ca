-- Each loaded batch compared with the batch loaded before it: row count ratio, change of the
-- mean purchase amount, and the distance between their category mixes (total variation
-- distance: half the sum of absolute differences of category shares, 0 = same mix, 1 =
-- disjoint). The drift checks look at the latest batch only.

with

batches as (

    select * from {{ ref('stg_warehouse__batches') }}

),

purchases as (

    select * from {{ ref('stg_warehouse__purchases') }}

),

batch_sequence as (

    select
        batch_id,
        loaded_at,
        lag(batch_id) over (order by loaded_at, batch_id) as previous_batch_id,
        row_number() over (order by loaded_at desc, batch_id desc) as recency_rank

    from batches

),

batch_stats as (

    select
        batch_id,
        count(*) as n_rows,
        avg(cast(amount as {{ type_double() }})) as mean_spend

    from purchases

    group by 1

),

category_counts as (

    select
        batch_id,
        coalesce(category_name, 'Unknown') as category_name,
        count(*) as n_rows

    from purchases

    group by 1, 2

),

category_shares as (

    select
        category_counts.batch_id,
        category_counts.category_name,
        {{ safe_divide('category_counts.n_rows', 'batch_stats.n_rows') }} as category_share

    from category_counts

    inner join batch_stats
        on category_counts.batch_id = batch_stats.batch_id

),

signed_shares as (

    select
        batch_sequence.batch_id,
        category_shares.category_name,
        category_shares.category_share as signed_share

    from batch_sequence

    inner join category_shares
        on batch_sequence.batch_id = category_shares.batch_id

    where batch_sequence.previous_batch_id is not null

    union all

    select
        batch_sequence.batch_id,
        category_shares.category_name,
        -category_shares.category_share as signed_share

    from batch_sequence

    inner join category_shares
        on batch_sequence.previous_batch_id = category_shares.batch_id

),

share_differences as (

    select
        batch_id,
        category_name,
        sum(signed_share) as share_difference

    from signed_shares

    group by 1, 2

),

category_mix as (

    select
        batch_id,
        0.5 * sum(abs(share_difference)) as category_mix_distance

    from share_differences

    group by 1

),

final as (

    select
        batch_sequence.batch_id,
        batch_sequence.loaded_at,
        batch_sequence.previous_batch_id,
        batch_sequence.recency_rank = 1 as is_latest_batch,
        cast(coalesce(current_stats.n_rows, 0) as {{ dbt.type_bigint() }}) as n_rows,
        cast(previous_stats.n_rows as {{ dbt.type_bigint() }}) as previous_n_rows,
        {{ safe_divide('coalesce(current_stats.n_rows, 0)', 'previous_stats.n_rows') }}
            as row_count_ratio,
        current_stats.mean_spend,
        previous_stats.mean_spend as previous_mean_spend,
        {{ safe_divide('current_stats.mean_spend', 'previous_stats.mean_spend') }} - 1
            as mean_spend_change,
        cast(category_mix.category_mix_distance as {{ type_double() }}) as category_mix_distance

    from batch_sequence

    left join batch_stats as current_stats
        on batch_sequence.batch_id = current_stats.batch_id

    left join batch_stats as previous_stats
        on batch_sequence.previous_batch_id = previous_stats.batch_id

    left join category_mix
        on batch_sequence.batch_id = category_mix.batch_id

)

select * from final
