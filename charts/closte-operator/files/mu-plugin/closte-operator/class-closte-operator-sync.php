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
 * for each site that differs, a deleted site's being the empty set. Then it
 * retries everything still queued. A write lost while the API server was
 * down is repaired here. MappedDomains without a site id (made through the
 * Closte-compatible door, or by hand) are never touched.
 */
final class Closte_Operator_Sync {

	const LAST = 'last_sync';

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
	 * @param Closte_Operator_Store   $store   Where the last result is kept.
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
	 * GET /v1/domains); entries without a site id are left out.
	 *
	 * @param array $domains The `domains` array of the answer.
	 * @return array<int, array<int, string>>
	 */
	public static function listed( array $domains ): array {
		$sets = array();
		foreach ( $domains as $entry ) {
			if ( ! is_array( $entry ) || ! isset( $entry['siteId'], $entry['domain'] ) || ! is_int( $entry['siteId'] ) ) {
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
	 * Runs one sync and records its summary.
	 *
	 * @param array<int, array<int, string>> $desired Site id => domains, for every site.
	 * @return array Summary: ok, time, error, sites, written, queued (to retry), failed (dropped), retried.
	 */
	public function run( array $desired ): array {
		$summary = array(
			'ok'      => false,
			'time'    => (int) ( $this->clock )(),
			'error'   => '',
			'sites'   => count( $desired ),
			'written' => 0,
			'queued'  => 0,
			'failed'  => 0,
			'retried' => array(),
		);
		$listing = $this->sidecar->domains();
		$this->queue->observe( $listing );
		$json = $listing->json();
		if ( ! $listing->ok() || ! is_array( $json ) || ! isset( $json['domains'] ) || ! is_array( $json['domains'] ) ) {
			$summary['error'] = $listing->ok() ? 'the sidecar answered GET /v1/domains without a domains list' : $listing->message();
			$this->store->set( self::LAST, $summary );
			return $summary;
		}
		foreach ( self::plan( $desired, self::listed( $json['domains'] ) ) as $site_id => $domains ) {
			$result = $this->queue->attempt( Closte_Operator_Queue::site( $site_id, $domains ) );
			if ( null !== $result && $result->ok() ) {
				++$summary['written'];
			} elseif ( null === $result || $result->retryable() ) {
				++$summary['queued'];
			} else {
				++$summary['failed'];
			}
		}
		$summary['retried'] = $this->queue->drain( true );
		$summary['ok']      = true;
		$this->store->set( self::LAST, $summary );
		return $summary;
	}

	/**
	 * The summary of the last run, or null.
	 *
	 * @return array|null
	 */
	public function last(): ?array {
		$last = $this->store->get( self::LAST, null );
		return is_array( $last ) ? $last : null;
	}
}
