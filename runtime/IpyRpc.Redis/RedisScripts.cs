namespace IpyRpc.Redis;

/// <summary>
/// The Lua scripts behind <see cref="RedisJobQueue"/>: every state change of a job is one script,
/// so it is atomic and costs one round trip. Keys hang off a prefix with a hash tag
/// (<c>ipyrpc:{name}</c>), passed as ARGV[1]:
/// <list type="bullet">
/// <item><c>P:stream</c>: the queue, a stream of job ids read by the consumer group <c>workers</c>;</item>
/// <item><c>P:job:ID</c>: a hash per job (state, request, arguments, times, attempts, outcome, result…);</item>
/// <item><c>P:ev:ID</c>: a stream per job of its events, entry id <c>N-0</c> for event number N;</item>
/// <item><c>P:jobs</c>, <c>P:done</c>, <c>P:deadlines</c>, <c>P:leases</c>: sorted sets by creation, completion, deadline and lease expiry time;</item>
/// <item><c>P:idle</c>: a sorted set of the consumers whose last take found the queue empty, by the time it did;</item>
/// <item><c>P:bytes</c>: the bytes finished jobs retain; channels <c>P:events</c>, <c>P:cancel</c>, and <c>P:wake:CONSUMER</c>
/// for each consumer (a submit wakes one idle consumer, not all).</item>
/// </list>
/// </summary>
internal static class RedisScripts
{
    /// <summary>The functions every script starts with.</summary>
    private const string Library = """
        local P = ARGV[1]
        local function jobkey(id) return P .. ':job:' .. id end
        local function evkey(id) return P .. ':ev:' .. id end
        local function publish(id, n, kind, stream, text, attempt, inline, outcome, result)
          redis.call('PUBLISH', P .. ':events', cmsgpack.pack({id, n, kind, stream, text, attempt, inline, outcome, result}))
        end
        local function append(id, kind, stream, text, attempt)
          local n = redis.call('HINCRBY', jobkey(id), 'last', 1)
          redis.call('XADD', evkey(id), n .. '-0', 'k', kind, 's', stream, 't', text, 'a', attempt)
          return n
        end
        -- Wakes one idle worker: the one idle longest (each registers itself in P:idle when its take finds the
        -- queue empty), on its own channel; one that no longer listens (gone) is dropped and the next is tried.
        local function wake()
          for i = 1, 16 do
            local w = redis.call('ZPOPMIN', P .. ':idle')
            if #w == 0 then return end
            if redis.call('PUBLISH', P .. ':wake:' .. w[1], '') > 0 then return end
          end
        end
        local function finish(id, from, attempt, state, now, outcome, result, inlineLimit)
          local job = jobkey(id)
          if redis.call('HGET', job, 'state') ~= from then return -1 end
          if attempt ~= '' and redis.call('HGET', job, 'attempts') ~= attempt then return -1 end
          local n = append(id, 2, 0, '', 0)
          local retained = tonumber(redis.call('HGET', job, 'output_bytes') or '0') + string.len(result)
          redis.call('HSET', job, 'state', state, 'completed', now, 'outcome', outcome, 'result', result, 'retained', retained)
          redis.call('HDEL', job, 'args')
          local entry = redis.call('HGET', job, 'entry')
          if entry then
            redis.call('XACK', P .. ':stream', 'workers', entry)
            redis.call('XDEL', P .. ':stream', entry)
          end
          redis.call('ZADD', P .. ':done', now, id)
          redis.call('ZREM', P .. ':deadlines', id)
          redis.call('ZREM', P .. ':leases', id)
          redis.call('INCRBY', P .. ':bytes', retained + 256)
          if string.len(result) <= inlineLimit then
            publish(id, n, 2, 0, '', 0, 1, outcome, result)
          else
            publish(id, n, 2, 0, '', 0, 0, '', '')
          end
          return n
        end

        """;

    /// <summary>
    /// ARGV: prefix, id, function, request, args, created, deadline ('' for none), detached, owner ('' for none). Made again
    /// after its answer was lost (the connection broke), it finds the job and adds nothing: ids are never reused.
    /// </summary>
    public const string Submit = Library + """
        local id = ARGV[2]
        local job = jobkey(id)
        if redis.call('EXISTS', job) == 1 then return redis.call('HGET', job, 'entry') or '' end
        redis.call('HSET', job, 'function', ARGV[3], 'request', ARGV[4], 'args', ARGV[5], 'state', '0', 'created', ARGV[6],
          'detached', ARGV[8], 'last', '0', 'attempts', '0', 'output_bytes', '0', 'retained', string.len(ARGV[5]), 'released', '0', 'cancel', '0', 'owner', ARGV[9])
        if ARGV[7] ~= '' then
          redis.call('HSET', job, 'deadline', ARGV[7])
          redis.call('ZADD', P .. ':deadlines', ARGV[7], id)
        end
        local entry = redis.call('XADD', P .. ':stream', '*', 'id', id)
        redis.call('HSET', job, 'entry', entry)
        redis.call('ZADD', P .. ':jobs', ARGV[6], id)
        wake()
        return entry
        """;

    /// <summary>
    /// Leases up to N jobs: first those whose lease lapsed (each lease's expiry is in <c>P:leases</c>;
    /// its stream entry is claimed over with XCLAIM), then new ones (XREADGROUP). Taking fewer than N, the
    /// consumer counts as idle (<c>P:idle</c>) until a submit wakes it.
    /// ARGV: prefix, consumer, lease ms, now, worker, (unused), how many. Returns an array of {id, attempt, request, args, entry},
    /// and {id, attempt, request, '', '', 1} for a lapsed job whose cancel was asked for, for the caller to end cancelled.
    /// </summary>
    public const string Take = Library + """
        local stream = P .. ':stream'
        local now = tonumber(ARGV[4])
        local function take(entry, id)
          local job = jobkey(id)
          local st = redis.call('HGET', job, 'state')
          if (not st) or tonumber(st) >= 2 then
            redis.call('XACK', stream, 'workers', entry)
            redis.call('XDEL', stream, entry)
            redis.call('ZREM', P .. ':leases', id)
            return nil
          end
          local attempts = redis.call('HINCRBY', job, 'attempts', 1)
          redis.call('HSET', job, 'state', '1', 'worker', ARGV[5], 'cancel', '0', 'entry', entry)
          redis.call('HSETNX', job, 'started', ARGV[4])
          redis.call('ZREM', P .. ':deadlines', id)
          redis.call('ZADD', P .. ':leases', now + tonumber(ARGV[3]), id)
          if attempts > 1 then
            -- Delivered again: an earlier attempt's items and progress (output of streams 2 and 3) are not this run's;
            -- its console output stays.
            local dropped = 0
            for _, e in ipairs(redis.call('XRANGE', evkey(id), '-', '+')) do
              local f = e[2]
              if f[2] == '1' and tonumber(f[4]) > 1 then
                dropped = dropped + string.len(f[6])
                redis.call('XDEL', evkey(id), e[1])
              end
            end
            if dropped > 0 then
              redis.call('HINCRBY', job, 'output_bytes', -dropped)
              redis.call('HINCRBY', job, 'retained', -dropped)
            end
          end
          if attempts > 1 and tonumber(redis.call('HGET', job, 'announced') or '0') < attempts then
            local n = append(id, 0, 0, '', attempts)
            publish(id, n, 0, 0, '', attempts, 0, '', '')
            redis.call('HSET', job, 'announced', attempts)
          end
          local f = redis.call('HMGET', job, 'request', 'args')
          return {id, attempts, f[1], f[2] or '', entry}
        end
        local want = tonumber(ARGV[7])
        local taken = {}
        for i = 1, want + 16 do
          if #taken >= want then break end
          local lapsed = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now, 'LIMIT', 0, 1)
          if #lapsed == 0 then break end
          local id = lapsed[1]
          redis.call('ZREM', P .. ':leases', id)
          local f = redis.call('HMGET', jobkey(id), 'entry', 'state', 'cancel', 'attempts')
          local entry = f[1]
          if f[2] == '1' and f[3] == '1' then
            -- Its cancel was asked for while it ran: it ends cancelled, not run again. The caller ends it (it
            -- encodes the outcome); held meanwhile, so that a caller that fails leaves it to the next take.
            redis.call('ZADD', P .. ':leases', now + tonumber(ARGV[3]), id)
            table.insert(taken, {id, tonumber(f[4]), redis.call('HGET', jobkey(id), 'request'), '', '', 1})
          elseif entry then
            redis.call('XCLAIM', stream, 'workers', ARGV[2], 0, entry, 'JUSTID')
            local r = take(entry, id)
            if r then table.insert(taken, r) end
          end
        end
        for i = 1, 16 do
          if #taken >= want then break end
          local read = redis.call('XREADGROUP', 'GROUP', 'workers', ARGV[2], 'COUNT', want - #taken, 'STREAMS', stream, '>')
          if not read then break end
          for _, e in ipairs(read[1][2]) do
            local r = take(e[1], e[2][2])
            if r then table.insert(taken, r) end
          end
        end
        -- Fewer than wanted: the queue is empty, so this consumer is idle until a submit wakes it.
        if #taken < want then
          redis.call('ZADD', P .. ':idle', now, ARGV[2])
        else
          redis.call('ZREM', P .. ':idle', ARGV[2])
        end
        return taken
        """;

    /// <summary>
    /// Sweeps up stream entries left pending by consumers that vanished without a lease record (an
    /// entry read but never taken): XAUTOCLAIM of entries idle longer than a long time, each then
    /// released if its job has ended or queued again if not. ARGV: prefix, consumer, idle ms.
    /// </summary>
    public const string SweepOrphans = Library + """
        local stream = P .. ':stream'
        local claimed = redis.call('XAUTOCLAIM', stream, 'workers', ARGV[2], ARGV[3], '0-0', 'COUNT', 100)
        local n = 0
        for _, e in ipairs(claimed[2]) do
          local id = e[2][2]
          local st = redis.call('HGET', jobkey(id), 'state')
          if (not st) or tonumber(st) >= 2 then
            redis.call('XACK', stream, 'workers', e[1])
            redis.call('XDEL', stream, e[1])
          elseif not redis.call('ZSCORE', P .. ':leases', id) then
            redis.call('HSET', jobkey(id), 'state', '0', 'entry', e[1])
            redis.call('ZADD', P .. ':leases', 0, id)
          end
          n = n + 1
        end
        return n
        """;

    /// <summary>Extends a lease (and resets its entry's idle time). ARGV: prefix, id, attempt, consumer, entry, new expiry ms. Returns -1 when lost, else the cancel flag.</summary>
    public const string Renew = Library + """
        local job = jobkey(ARGV[2])
        if redis.call('HGET', job, 'state') ~= '1' or redis.call('HGET', job, 'attempts') ~= ARGV[3] then return -1 end
        redis.call('ZADD', P .. ':leases', ARGV[6], ARGV[2])
        redis.call('XCLAIM', P .. ':stream', 'workers', ARGV[4], 0, ARGV[5], 'JUSTID')
        return tonumber(redis.call('HGET', job, 'cancel'))
        """;

    /// <summary>
    /// Hands a job back unfinished: queued again, its lease expired at once so the next take claims it. With
    /// <c>untake</c> set, the job was taken for a worker that had stopped waiting by the time it arrived and goes back
    /// as never taken: its attempt count one less (the redelivery's Started event, if its take recorded one, stays:
    /// the attempt it announces is the next one) and its deadline watched again. A job whose cancel was asked for
    /// while it was held ends cancelled instead (its caller was told so). ARGV: prefix, id, attempt, now, cancelled
    /// outcome, untake ('1' or '0'). Returns 0 when queued again, the Completed event's number when cancelled, -1 when
    /// not held.
    /// </summary>
    public const string HandBack = Library + """
        local id = ARGV[2]
        local job = jobkey(id)
        if redis.call('HGET', job, 'state') ~= '1' or redis.call('HGET', job, 'attempts') ~= ARGV[3] then return -1 end
        if redis.call('HGET', job, 'cancel') == '1' then return finish(id, '1', ARGV[3], '4', ARGV[4], ARGV[5], '', 0) end
        if ARGV[6] == '1' then
          if redis.call('HINCRBY', job, 'attempts', -1) == 0 then redis.call('HDEL', job, 'started', 'worker') end
          local deadline = redis.call('HGET', job, 'deadline')
          if deadline then redis.call('ZADD', P .. ':deadlines', deadline, id) end
        end
        redis.call('HSET', job, 'state', '0')
        redis.call('ZADD', P .. ':leases', 0, id)
        wake()
        return 0
        """;

    /// <summary>Records output. ARGV: prefix, id, attempt, per-job cap, then (stream, text) pairs. Returns the last event number, or -1 when the lease is gone.</summary>
    public const string Output = Library + """
        local id = ARGV[2]
        local job = jobkey(id)
        if redis.call('HGET', job, 'state') ~= '1' or redis.call('HGET', job, 'attempts') ~= ARGV[3] then return -1 end
        local bytes = 0
        local last = 0
        for i = 5, #ARGV, 2 do
          last = append(id, 1, ARGV[i], ARGV[i + 1], 0)
          bytes = bytes + string.len(ARGV[i + 1])
          publish(id, last, 1, tonumber(ARGV[i]), ARGV[i + 1], 0, 0, '', '')
        end
        local total = redis.call('HINCRBY', job, 'output_bytes', bytes)
        redis.call('HINCRBY', job, 'retained', bytes)
        local cap = tonumber(ARGV[4])
        while total > cap do
          local first = redis.call('XRANGE', evkey(id), '-', '+', 'COUNT', 1)
          if #first == 0 then break end
          local len = string.len(first[1][2][6])
          redis.call('XDEL', evkey(id), first[1][1])
          total = redis.call('HINCRBY', job, 'output_bytes', -len)
          redis.call('HINCRBY', job, 'retained', -len)
        end
        return last
        """;

    /// <summary>Ends a job. ARGV: prefix, id, from state, attempt ('' for any), state, now, outcome, result, inline limit. Returns the event number or -1.</summary>
    public const string Finish = Library + """
        return finish(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]))
        """;

    /// <summary>Cancels: a queued job ends at once, a running one is flagged and its worker told. ARGV: prefix, id, now, cancelled outcome. Returns 1 when cancelled, 0 when finished, -2 when unknown.</summary>
    public const string Cancel = Library + """
        local id = ARGV[2]
        local st = redis.call('HGET', jobkey(id), 'state')
        if not st then return -2 end
        if st == '0' then
          finish(id, '0', '', '4', ARGV[3], ARGV[4], '', 0)
          return 1
        end
        if st == '1' then
          redis.call('HSET', jobkey(id), 'cancel', '1')
          redis.call('PUBLISH', P .. ':cancel', id)
          return 1
        end
        return 0
        """;

    /// <summary>Drops a finished job's result. ARGV: prefix, id.</summary>
    public const string Release = Library + """
        local job = jobkey(ARGV[2])
        local st = tonumber(redis.call('HGET', job, 'state') or '-1')
        if st < 2 or redis.call('HGET', job, 'released') == '1' then return 0 end
        local len = string.len(redis.call('HGET', job, 'result') or '')
        redis.call('HSET', job, 'released', '1', 'result', '')
        redis.call('HINCRBY', job, 'retained', -len)
        redis.call('DECRBY', P .. ':bytes', len)
        return len
        """;

    /// <summary>Forgets finished jobs older than the cutoff, then the oldest while over the byte budget. ARGV: prefix, cutoff ms, max bytes.</summary>
    public const string Trim = Library + """
        local function forget(id)
          local job = jobkey(id)
          local retained = tonumber(redis.call('HGET', job, 'retained') or '0')
          redis.call('DEL', job, evkey(id))
          redis.call('ZREM', P .. ':done', id)
          redis.call('ZREM', P .. ':jobs', id)
          redis.call('DECRBY', P .. ':bytes', retained + 256)
        end
        local old = redis.call('ZRANGEBYSCORE', P .. ':done', '-inf', '(' .. ARGV[2], 'LIMIT', 0, 500)
        for _, id in ipairs(old) do forget(id) end
        local n = 0
        while tonumber(redis.call('GET', P .. ':bytes') or '0') > tonumber(ARGV[3]) and n < 1000 do
          local oldest = redis.call('ZRANGE', P .. ':done', 0, 0)
          if #oldest == 0 then break end
          forget(oldest[1])
          n = n + 1
        end
        return #old + n
        """;
}
