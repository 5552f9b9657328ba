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
}
