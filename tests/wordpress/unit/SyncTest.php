<?php
/**
 * The whole-set sync writes the sites whose domains differ.
 *
 * @package Closte_Operator
 */

final class SyncTest extends Closte_Operator_Test_Case {

	private Closte_Operator_Sync $sync;

	protected function setUp(): void {
		parent::setUp();
		$this->sync = new Closte_Operator_Sync( $this->sidecar, $this->queue, $this->store, fn() => $this->now );
	}

	private static function entry( string $domain, ?int $site_id ): array {
		return array(
			'domain' => $domain,
			'name'   => str_replace( '.', '-', $domain ),
			'siteId' => $site_id,
			'stage'  => 'done',
			'ready'  => true,
		);
	}

	public function test_listed_groups_by_site_and_ignores_domains_without_one(): void {
		$this->assertSame(
			array(
				2 => array( 'a.example.com', 'b.example.com' ),
				5 => array( 'e.example.com' ),
			),
			Closte_Operator_Sync::listed(
				array(
					self::entry( 'b.example.com', 2 ),
					self::entry( 'a.example.com', 2 ),
					self::entry( 'x.example.com', null ),
					self::entry( 'e.example.com', 5 ),
					'garbage',
				)
			)
		);
	}

	public function test_plan_writes_only_the_sites_that_differ(): void {
		$desired = array(
			1 => array(),
			2 => array( 'b.example.com', 'a.example.com' ),
			3 => array( 'c.example.com' ),
			4 => array(),
		);
		$listed  = array(
			2 => array( 'a.example.com', 'b.example.com' ),
			4 => array( 'stale.example.com' ),
			9 => array( 'gone.example.com' ),
		);
		$this->assertSame(
			array(
				3 => array( 'c.example.com' ),
				4 => array(),
				9 => array(),
			),
			Closte_Operator_Sync::plan( $desired, $listed )
		);
		$this->assertSame( array(), Closte_Operator_Sync::plan( array( 2 => array( 'A.example.com.' ) ), array( 2 => array( 'a.example.com' ) ) ) );
	}

	public function test_run_writes_the_differences_then_retries_the_queue(): void {
		$this->transport->always( 503 );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'left.example.com' ) );
		$this->transport->requests = array();

		$this->transport->answer = function ( $request ) {
			if ( 'GET' === $request['method'] ) {
				$domains = array( self::entry( 'a.example.com', 2 ), self::entry( 'gone.example.com', 9 ), self::entry( 'manual.example.com', null ) );
				return new Closte_Operator_Result( 200, json_encode( array( 'domains' => $domains ) ) );
			}
			return new Closte_Operator_Result( 'DELETE' === $request['method'] ? 204 : 200, '{}' );
		};
		$summary = $this->sync->run(
			array(
				1 => array(),
				2 => array( 'a.example.com', 'b.example.com' ),
			)
		);

		$this->assertSame(
			array(
				'GET /v1/domains',
				'PUT /v1/sites/2/domains',
				'PUT /v1/sites/9/domains',
				'DELETE /v1/domains/left.example.com',
			),
			$this->transport->lines()
		);
		$this->assertSame( '{"domains":["a.example.com","b.example.com"]}', $this->transport->requests[1]['body'] );
		$this->assertSame( '{"domains":[]}', $this->transport->requests[2]['body'] );
		$this->assertTrue( $summary['ok'] );
		$this->assertSame( 2, $summary['written'] );
		$this->assertSame( 2, $summary['sites'] );
		$this->assertSame( array( 'done' => 1, 'queued' => 0, 'dropped' => 0 ), $summary['retried'] );
		$this->assertSame( array(), $this->queue->entries() );
		$this->assertSame( $summary, $this->sync->last() );
	}

	public function test_a_refused_site_is_counted_and_the_rest_goes_on(): void {
		$this->transport->answer = function ( $request ) {
			if ( 'GET' === $request['method'] ) {
				return new Closte_Operator_Result( 200, '{"domains":[]}' );
			}
			if ( str_contains( $request['url'], '/sites/2/' ) ) {
				return new Closte_Operator_Result( 409, '{"error":"taken.example.com belongs to site 7"}' );
			}
			if ( str_contains( $request['url'], '/sites/3/' ) ) {
				return new Closte_Operator_Result( 400, '{"error":"invalid domain"}' );
			}
			return new Closte_Operator_Result( 200, '{}' );
		};
		$summary = $this->sync->run(
			array(
				2 => array( 'taken.example.com' ),
				3 => array( 'bad.example.com' ),
				4 => array( 'd.example.com' ),
			)
		);
		$this->assertSame( 1, $summary['written'] );
		$this->assertSame( 1, $summary['queued'] );
		$this->assertSame( 1, $summary['failed'] );
		$this->assertSame( 'HTTP 409: taken.example.com belongs to site 7', $this->queue->entries()['site:2']['error'] );
		$this->assertSame( 'HTTP 400: invalid domain', $this->queue->failures()[0]['error'] );
	}

	public function test_without_the_list_nothing_is_written(): void {
		$this->transport->always( 0 );
		$summary = $this->sync->run( array( 2 => array( 'a.example.com' ) ) );
		$this->assertFalse( $summary['ok'] );
		$this->assertStringContainsString( 'sidecar unreachable', $summary['error'] );
		$this->assertSame( array( 'GET /v1/domains' ), $this->transport->lines() );
		$this->assertTrue( $this->queue->is_down() );

		$this->transport->always( 200, '{"items":[]}' );
		$summary = $this->sync->run( array( 2 => array( 'a.example.com' ) ) );
		$this->assertFalse( $summary['ok'] );
		$this->assertStringContainsString( 'without a domains list', $summary['error'] );
	}

	/**
	 * A sidecar listing `$domains` (entries) whose writes each take `$cost` seconds of the clock.
	 *
	 * @param array $domains Listing entries.
	 * @param int   $cost    Seconds per write.
	 */
	private function sidecar_with( array $domains, int $cost ): void {
		$this->transport->answer = function ( $request ) use ( $domains, $cost ) {
			if ( 'GET' === $request['method'] ) {
				return new Closte_Operator_Result( 200, json_encode( array( 'domains' => $domains ) ) );
			}
			$this->now += $cost;
			return new Closte_Operator_Result( 200, '{}' );
		};
	}

	public function test_a_sync_spends_its_budget_then_the_next_batch_goes_on_after_the_cursor(): void {
		$desired = array();
		for ( $site = 1; $site <= 10; $site++ ) {
			$desired[ $site ] = array( "s{$site}.example.com" );
		}
		$this->sidecar_with( array(), 3 );

		$first = $this->sync->run( $desired, null, 10 );
		$this->assertTrue( $first['ok'] );
		$this->assertFalse( $first['complete'] );
		$this->assertSame( 4, $first['written'], 'three seconds a write, ten to spend: the fourth starts at 9 s' );
		$this->assertSame( 6, $first['remaining'] );
		$this->assertSame( 1, $first['batches'] );
		$progress = $this->sync->progress();
		$this->assertSame( 6, $progress['remaining'] );
		$this->assertSame( 4, $progress['done'] );
		$this->assertSame( sprintf( '1:%020d', 4 ), $progress['cursor'] );

		// The listing still shows none of them (a slow cache): the cursor, not the listing, says where to go on.
		$this->transport->requests = array();
		$second                    = $this->sync->run( $desired, null, 10 );
		$this->assertSame( 'PUT /v1/sites/5/domains', $this->transport->lines()[1] );
		$this->assertSame( 8, $second['written'], 'counts add up over the batches' );
		$third = $this->sync->run( $desired, null, 10 );
		$this->assertTrue( $third['complete'] );
		$this->assertSame( 10, $third['written'] );
		$this->assertSame( 0, $third['remaining'] );
		$this->assertSame( 3, $third['batches'] );
		$this->assertSame( $first['time'], $third['time'], 'the sync started with the first batch' );
		$this->assertNull( $this->sync->progress() );
		$this->assertSame( $this->now, $this->sync->last_complete() );

		// The next sync starts from the first site again.
		$this->transport->requests = array();
		$this->sync->run( $desired, null, 10 );
		$this->assertSame( 'PUT /v1/sites/1/domains', $this->transport->lines()[1] );
	}

	public function test_the_cursor_is_stored_as_the_batch_goes(): void {
		$desired = array();
		for ( $site = 1; $site <= 60; $site++ ) {
			$desired[ $site ] = array( "s{$site}.example.com" );
		}
		$seen                    = array();
		$this->transport->answer = function ( $request ) use ( &$seen ) {
			if ( 'GET' === $request['method'] ) {
				return new Closte_Operator_Result( 200, '{"domains":[]}' );
			}
			$progress = $this->store->get( Closte_Operator_Sync::PROGRESS );
			$seen[]   = is_array( $progress ) ? $progress['cursor'] : '';
			return new Closte_Operator_Result( 200, '{}' );
		};
		$this->sync->run( $desired, null, 10 );
		$this->assertSame( '', $seen[ Closte_Operator_Sync::SAVE_EVERY - 1 ] );
		$this->assertSame( sprintf( '1:%020d', Closte_Operator_Sync::SAVE_EVERY ), $seen[ Closte_Operator_Sync::SAVE_EVERY ], 'a batch cut short by PHP loses at most SAVE_EVERY writes, each idempotent' );
	}

	public function test_a_failed_listing_keeps_the_progress_for_the_next_batch(): void {
		$desired = array(
			1 => array( 'a.example.com' ),
			2 => array( 'b.example.com' ),
		);
		$this->sidecar_with( array(), 5 );
		$this->sync->run( $desired, null, 4 );
		$this->transport->always( 0 );
		$failed = $this->sync->run( $desired, null, 4 );
		$this->assertFalse( $failed['ok'] );
		$this->assertSame( sprintf( '1:%020d', 1 ), $this->sync->progress()['cursor'] );
		$this->sidecar_with( array( array( 'domain' => 'a.example.com', 'siteId' => 1 ) ), 1 );
		$this->transport->requests = array();
		$done                      = $this->sync->run( $desired, null, 4 );
		$this->assertTrue( $done['complete'] );
		$this->assertSame( array( 'GET /v1/domains', 'PUT /v1/sites/2/domains' ), $this->transport->lines() );
	}

	public function test_an_old_unfinished_sync_starts_over(): void {
		$desired = array(
			1 => array( 'a.example.com' ),
			2 => array( 'b.example.com' ),
		);
		$this->sidecar_with( array(), 5 );
		$this->sync->run( $desired, null, 4 );
		$this->now                += Closte_Operator_Sync::PROGRESS_MAX_AGE;
		$this->transport->requests = array();
		$this->sync->run( $desired, null, 4 );
		$this->assertSame( 'PUT /v1/sites/1/domains', $this->transport->lines()[1] );
	}

	public function test_intervals_are_patched_where_they_differ_outside_the_sites_written(): void {
		$listed = array(
			array( 'domain' => 'right.example.com', 'siteId' => 2, 'checkInterval' => '1m' ),
			array( 'domain' => 'wrong.example.com', 'siteId' => 2, 'checkInterval' => '300s' ),
			array( 'domain' => 'unset.example.com', 'siteId' => null, 'checkInterval' => null ),
			array( 'domain' => 'rewritten.example.com', 'siteId' => 3, 'checkInterval' => '300s' ),
			array( 'domain' => 'old-sidecar.example.com', 'siteId' => 4 ),
		);
		$this->assertSame(
			array(
				'unset.example.com' => null,
				'wrong.example.com' => 2,
			),
			Closte_Operator_Sync::intervals( $listed, 60, array( 3 => array() ) )
		);
		$this->assertSame( array(), Closte_Operator_Sync::intervals( $listed, null, array() ), 'no interval set in WordPress: nothing to patch' );
	}

	public function test_a_changed_interval_patches_each_domain_once_in_the_batches(): void {
		$sidecar = new Closte_Operator_Sidecar( $this->transport, new Closte_Operator_Config( self::SIDECAR, self::TOKEN ), fn() => 60 );
		$queue   = new Closte_Operator_Queue( $sidecar, $this->store, $this->rows, fn() => $this->now );
		$sync    = new Closte_Operator_Sync( $sidecar, $queue, $this->store, fn() => $this->now );
		$this->sidecar_with(
			array(
				array( 'domain' => 'a.example.com', 'siteId' => 2, 'checkInterval' => '300s' ),
				array( 'domain' => 'door.example.com', 'siteId' => null, 'checkInterval' => null ),
				array( 'domain' => 'c.example.com', 'siteId' => 3, 'checkInterval' => '300s' ),
			),
			1
		);
		$summary = $sync->run(
			array(
				2 => array( 'a.example.com' ),
				3 => array( 'c.example.com', 'new.example.com' ),
			),
			60,
			30
		);
		$this->assertSame(
			array( 'GET /v1/domains', 'PUT /v1/sites/3/domains', 'PUT /v1/domains/a.example.com', 'PUT /v1/domains/door.example.com' ),
			$this->transport->lines()
		);
		$this->assertSame( '{"domains":["c.example.com","new.example.com"],"checkInterval":"60s"}', $this->transport->requests[1]['body'] );
		$this->assertSame( '{"siteId":2,"checkInterval":"60s"}', $this->transport->requests[2]['body'] );
		$this->assertSame( '{"checkInterval":"60s"}', $this->transport->requests[3]['body'], 'a Closte-door domain keeps having no site' );
		$this->assertSame( 1, $summary['written'] );
		$this->assertSame( 2, $summary['intervals'] );
	}

	public function test_overdue(): void {
		$hour = 3600;
		$now  = 1700000000;
		$this->assertFalse( Closte_Operator_Sync::overdue( $now + 60, null, $hour, $now ), 'new: scheduled, never run' );
		$this->assertFalse( Closte_Operator_Sync::overdue( $now - 60, $now - $hour, $hour, $now ), 'due a minute ago: WP-Cron runs it at the next request' );
		$this->assertTrue( Closte_Operator_Sync::overdue( $now - Closte_Operator_Sync::CRON_GRACE - 1, $now - $hour, $hour, $now ), 'WP-Cron is not running' );
		$this->assertTrue( Closte_Operator_Sync::overdue( $now + 60, $now - 3 * $hour, $hour, $now ), 'no complete sync for three hours' );
		$this->assertFalse( Closte_Operator_Sync::overdue( null, $now - $hour, $hour, $now ) );
	}

	public function test_objects_the_sidecar_did_not_make_are_not_a_sites_and_get_no_patch(): void {
		$listed = array(
			array( 'domain' => 'mine.example.com', 'siteId' => 2, 'managed' => true, 'checkInterval' => '300s' ),
			array( 'domain' => 'hand-made.example.com', 'siteId' => 2, 'managed' => false, 'checkInterval' => '300s' ),
		);
		$this->assertSame( array( 2 => array( 'mine.example.com' ) ), Closte_Operator_Sync::listed( $listed ) );
		$this->assertSame( array( 'mine.example.com' => 2 ), Closte_Operator_Sync::intervals( $listed, 60, array() ) );
		$this->assertSame( array(), Closte_Operator_Sync::plan( array( 2 => array( 'mine.example.com' ) ), Closte_Operator_Sync::listed( $listed ) ), 'the hand-made object does not make site 2 differ' );
	}
}

