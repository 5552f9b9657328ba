<?php
/**
 * The whole-set sync: WordPress's own tables are the truth for the domains of
 * each site; the sidecar's list shows which sites differ.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Compares what WordPress says each site's domains are with the sidecar's
 * MappedDomains (one GET /v1/domains), and sends PUT /v1/sites/{id}/domains
 * for each site that differs, a deleted site's being the empty set, and
 * PUT /v1/domains/{domain} for each other domain whose checkInterval is not
 * the one WordPress sets. Then it retries everything still queued. A write
 * lost while the API server was down is repaired here. MappedDomains without
 * a site id (made through the Closte-compatible door, or by hand) never get
 * a site.
 *
 * A run has a time budget: what is left when it is spent waits for the next
 * batch, which starts after the last item written (the cursor, stored as it
 * goes), so a network of any size is synced in pieces that each end well
 * inside PHP's and WP-Cron's limits.
 */
final class Closte_Operator_Sync {

	const LAST          = 'last_sync';
	const PROGRESS      = 'sync_progress';
	const LAST_COMPLETE = 'last_complete_sync';

	/** WP-Cron is late when an event is this far past due. */
	const CRON_GRACE = 900;

	/** A sync left unfinished this long starts again from the first site. */
	const PROGRESS_MAX_AGE = 86400;

	/** The cursor is stored after this many items (and at the end of a batch). */
	const SAVE_EVERY = 25;

	/**
	 * Returns the current Unix time.
	 *
	 * @var Closure
	 */
	private Closure $clock;

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Sidecar $sidecar The sidecar client.
	 * @param Closte_Operator_Queue   $queue   The write queue.
	 * @param Closte_Operator_Store   $store   Where the progress and the last result are kept.
	 * @param callable|null           $clock   Returns the Unix time; time() when null.
	 */
	public function __construct(
		private Closte_Operator_Sidecar $sidecar,
		private Closte_Operator_Queue $queue,
		private Closte_Operator_Store $store,
		?callable $clock = null
	) {
		$this->clock = Closure::fromCallable( $clock ?? 'time' );
	}

	/**
	 * The sets of domains per site id in the sidecar's list (entries of
	 * GET /v1/domains); entries without a site id, and objects the sidecar
	 * did not make (it never changes them), are left out.
	 *
	 * @param array $domains The `domains` array of the answer.
	 * @return array<int, array<int, string>>
	 */
	public static function listed( array $domains ): array {
		$sets = array();
		foreach ( $domains as $entry ) {
			if ( ! is_array( $entry ) || ! isset( $entry['siteId'], $entry['domain'] ) || ! is_int( $entry['siteId'] ) || ! self::managed( $entry ) ) {
				continue;
			}
			$sets[ $entry['siteId'] ][] = (string) $entry['domain'];
		}
		return array_map( array( 'Closte_Operator_Domains', 'set' ), $sets );
	}

	/**
	 * The site sets to write: each site whose desired set differs from the
	 * listed one, and each listed site that WordPress no longer has (empty).
	 *
	 * @param array<int, array<int, string>> $desired Site id => domains, every site of the network.
	 * @param array<int, array<int, string>> $listed  Site id => domains, from listed().
	 * @return array<int, array<int, string>>
	 */
	public static function plan( array $desired, array $listed ): array {
		$plan = array();
		foreach ( $desired as $site_id => $domains ) {
			$want = Closte_Operator_Domains::set( $domains );
			$have = isset( $listed[ $site_id ] ) ? $listed[ $site_id ] : array();
			if ( $want !== $have ) {
				$plan[ $site_id ] = $want;
			}
		}
		foreach ( $listed as $site_id => $domains ) {
			if ( ! isset( $desired[ $site_id ] ) && array() !== $domains ) {
				$plan[ $site_id ] = array();
			}
		}
		ksort( $plan );
		return $plan;
	}

	/**
	 * The listed domains whose checkInterval is not `$seconds`, outside the
	 * sites about to be written (a site's write carries the interval), with
	 * their site id. Entries that do not report a checkInterval at all (an
	 * older sidecar), and objects the sidecar did not make, are left alone.
	 *
	 * @param array    $domains The `domains` array of the answer.
	 * @param int|null $seconds The interval WordPress sets; null: the sidecar's default, nothing to patch.
	 * @param array    $sites   Site ids about to be written.
	 * @return array<string, int|null> Domain => site id.
	 */
	public static function intervals( array $domains, ?int $seconds, array $sites ): array {
		$patch = array();
		if ( null === $seconds ) {
			return $patch;
		}
		foreach ( $domains as $entry ) {
			if ( ! is_array( $entry ) || ! isset( $entry['domain'] ) || ! array_key_exists( 'checkInterval', $entry ) || ! self::managed( $entry ) ) {
				continue;
			}
			$site_id = isset( $entry['siteId'] ) && is_int( $entry['siteId'] ) ? $entry['siteId'] : null;
			if ( null !== $site_id && isset( $sites[ $site_id ] ) ) {
				continue;
			}
			$have = is_string( $entry['checkInterval'] ) ? Closte_Operator_Domains::seconds( $entry['checkInterval'] ) : null;
			if ( $have !== $seconds ) {
				$patch[ Closte_Operator_Domains::normalize( (string) $entry['domain'] ) ] = $site_id;
			}
		}
		ksort( $patch, SORT_STRING );
		return $patch;
	}

	/**
	 * Whether the sidecar made this object, so that it may change it: its
	 * `managed` field (an older sidecar that does not report it: yes).
	 *
	 * @param array $entry An entry of GET /v1/domains.
	 * @return bool
	 */
	private static function managed( array $entry ): bool {
		return ! array_key_exists( 'managed', $entry ) || false !== $entry['managed'];
	}

	/**
	 * The work of a sync in the order it is done, by cursor key: sites by id,
	 * then interval patches by domain.
	 *
	 * @param array<int, array<int, string>> $plan      Site sets to write, from plan().
	 * @param array<string, int|null>        $intervals Domains to patch, from intervals().
	 * @return array<string, array> Cursor key => queue operation.
	 */
	public static function work( array $plan, array $intervals ): array {
		$work = array();
		foreach ( $plan as $site_id => $domains ) {
			$work[ sprintf( '1:%020d', $site_id ) ] = Closte_Operator_Queue::site( (int) $site_id, $domains );
		}
		foreach ( $intervals as $domain => $site_id ) {
			$work[ '2:' . $domain ] = Closte_Operator_Queue::put( (string) $domain, $site_id );
		}
		ksort( $work, SORT_STRING );
		return $work;
	}

	/**
	 * Runs one batch of the sync: from the stored cursor (or the start) until
	 * the work is done or `$budget` seconds are spent. The summary says
	 * whether it is `complete`; when not, the caller schedules the next batch.
	 *
	 * @param array<int, array<int, string>> $desired  Site id => domains, for every site.
	 * @param int|null                       $interval Check interval in seconds WordPress sets, or null.
	 * @param int                            $budget   Seconds this batch may spend.
	 * @return array Summary: ok, time (when this sync started), error, sites, written, queued (to retry), failed (rejected), intervals (patched), retried, complete, remaining, batches, seconds.
	 */
	public function run( array $desired, ?int $interval = null, int $budget = 20 ): array {
		$start    = $this->now();
		$deadline = $start + max( 1, $budget );
		$progress = $this->progress();
		if ( null === $progress || $start - (int) $progress['started'] >= self::PROGRESS_MAX_AGE ) {
			$progress = array(
				'started'   => $start,
				'cursor'    => '',
				'written'   => 0,
				'queued'    => 0,
				'failed'    => 0,
				'intervals' => 0,
				'batches'   => 0,
				'remaining' => 0,
			);
		}
		++$progress['batches'];
		$summary = array(
			'ok'        => false,
			'time'      => (int) $progress['started'],
			'error'     => '',
			'sites'     => count( $desired ),
			'written'   => 0,
			'queued'    => 0,
			'failed'    => 0,
			'intervals' => 0,
			'retried'   => array(),
			'complete'  => false,
			'remaining' => 0,
			'batches'   => (int) $progress['batches'],
			'seconds'   => 0,
		);
		$listing = $this->sidecar->domains();
		$this->queue->observe( $listing );
		$json = $listing->json();
		if ( ! $listing->ok() || ! is_array( $json ) || ! isset( $json['domains'] ) || ! is_array( $json['domains'] ) ) {
			$summary['error'] = $listing->ok() ? 'the sidecar answered GET /v1/domains without a domains list' : $listing->message();
			$this->store->set( self::PROGRESS, $progress );
			$this->store->set( self::LAST, $summary );
			return $summary;
		}
		$plan  = self::plan( $desired, self::listed( $json['domains'] ) );
		$work  = self::work( $plan, self::intervals( $json['domains'], $interval, $plan ) );
		$left  = array_filter( array_keys( $work ), fn( $key ) => strcmp( $key, (string) $progress['cursor'] ) > 0 );
		$count = 0;
		foreach ( $left as $key ) {
			if ( $this->now() >= $deadline ) {
				break;
			}
			$op     = $work[ $key ];
			$result = $this->queue->attempt( $op );
			if ( null !== $result && $result->ok() ) {
				++$progress[ 'site' === $op['op'] ? 'written' : 'intervals' ];
			} elseif ( null === $result || $result->retryable() ) {
				++$progress['queued'];
			} else {
				++$progress['failed'];
			}
			$progress['cursor'] = $key;
			if ( 0 === ++$count % self::SAVE_EVERY ) {
				$this->store->set( self::PROGRESS, $progress );
			}
		}
		$progress['remaining'] = count( $left ) - $count;
		foreach ( array( 'written', 'queued', 'failed', 'intervals' ) as $field ) {
			$summary[ $field ] = (int) $progress[ $field ];
		}
		$summary['ok']        = true;
		$summary['remaining'] = $progress['remaining'];
		if ( 0 === $progress['remaining'] ) {
			$summary['retried']  = $this->queue->drain( true, $deadline );
			$summary['complete'] = true;
			$this->store->set( self::PROGRESS, null );
			$this->store->set( self::LAST_COMPLETE, $this->now() );
		} else {
			$this->store->set( self::PROGRESS, $progress );
		}
		$summary['seconds'] = $this->now() - $start;
		$this->store->set( self::LAST, $summary );
		return $summary;
	}

	/**
	 * The summary of the last batch, or null.
	 *
	 * @return array|null
	 */
	public function last(): ?array {
		$last = $this->store->get( self::LAST, null );
		return is_array( $last ) ? $last : null;
	}

	/**
	 * The sync in progress (split in batches): started, cursor, the counts
	 * so far, batches, remaining (items left after the last batch), done;
	 * null when none is.
	 *
	 * @return array|null
	 */
	public function progress(): ?array {
		$progress = $this->store->get( self::PROGRESS, null );
		if ( ! is_array( $progress ) || ! isset( $progress['started'], $progress['cursor'] ) ) {
			return null;
		}
		$progress['done'] = (int) $progress['written'] + (int) $progress['queued'] + (int) $progress['failed'] + (int) $progress['intervals'];
		return $progress;
	}

	/**
	 * When a sync last went through every site (Unix time), or null.
	 *
	 * @return int|null
	 */
	public function last_complete(): ?int {
		$time = $this->store->get( self::LAST_COMPLETE, null );
		return is_int( $time ) ? $time : null;
	}

	/**
	 * Whether the sync is overdue: its event is past due by more than
	 * CRON_GRACE (WP-Cron is not running), or the last complete sync is older
	 * than two recurrences and CRON_GRACE.
	 *
	 * @param int|null $next          When the sync event is due, or null.
	 * @param int|null $last_complete When a sync last completed, or null.
	 * @param int      $interval      The recurrence in seconds.
	 * @param int      $now           Now.
	 * @return bool
	 */
	public static function overdue( ?int $next, ?int $last_complete, int $interval, int $now ): bool {
		if ( null !== $next && $next < $now - self::CRON_GRACE ) {
			return true;
		}
		return null !== $last_complete && $now - $last_complete > 2 * $interval + self::CRON_GRACE;
	}

	/**
	 * Forgets the progress and the last result (uninstall).
	 *
	 * @return void
	 */
	public function forget(): void {
		$this->store->set( self::PROGRESS, null );
		$this->store->set( self::LAST, null );
		$this->store->set( self::LAST_COMPLETE, null );
	}

	/**
	 * Now, from the clock.
	 *
	 * @return int
	 */
	private function now(): int {
		return (int) ( $this->clock )();
	}
}
