<?php
/**
 * Writes are tried at once, else kept and retried with backoff.
 *
 * @package Closte_Operator
 */

final class QueueTest extends Closte_Operator_Test_Case {

	public function test_native_requests_carry_the_token_and_the_site_id(): void {
		$this->transport->always( 201, '{"domain":"shop.example.com"}' );
		$result = $this->queue->attempt( Closte_Operator_Queue::put( 'Shop.Example.com.', 2 ) );
		$this->queue->attempt( Closte_Operator_Queue::put( '*.example.com', null ) );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'old.example.com' ) );
		$this->queue->attempt( Closte_Operator_Queue::site( 7, array( 'b.example.com', 'A.example.com', 'b.example.com' ) ) );

		$this->assertTrue( $result->ok() );
		$this->assertSame(
			array(
				'PUT /v1/domains/shop.example.com',
				'PUT /v1/domains/%2A.example.com',
				'DELETE /v1/domains/old.example.com',
				'PUT /v1/sites/7/domains',
			),
			$this->transport->lines()
		);
		list( $put, $wildcard, $delete, $site ) = $this->transport->requests;
		$this->assertSame( 'Bearer ' . self::TOKEN, $put['headers']['Authorization'] );
		$this->assertSame( '{"siteId":2}', $put['body'] );
		$this->assertSame( 'application/json', $put['headers']['Content-Type'] );
		$this->assertNull( $wildcard['body'], 'no site id, no body' );
		$this->assertNull( $delete['body'] );
		$this->assertSame( '{"domains":["a.example.com","b.example.com"]}', $site['body'] );
		$this->assertSame( array(), $this->queue->entries() );
	}

	public function test_a_failed_write_is_retried_at_the_next_cron_run_then_with_backoff(): void {
		$this->transport->always( 0 );
		$this->assertFalse( $this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) )->reached() );
		$this->assertSame( array( 'domain:shop.example.com' => array( 'put', 1, 0 ) ), $this->queued() );

		$waits = array();
		for ( $i = 0; $i < 10; $i++ ) {
			$this->queue->drain();
			$entry   = $this->queue->entries()['domain:shop.example.com'];
			$waits[] = $entry['next'] - $this->now;
			$this->now = $entry['next'];
		}
		$this->assertSame( array( 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600 ), $waits );
		$this->assertSame( 11, $this->queue->entries()['domain:shop.example.com']['attempts'] );
		$this->assertStringContainsString( 'sidecar unreachable', $this->queue->entries()['domain:shop.example.com']['error'] );
	}

	public function test_drain_skips_what_is_not_due_unless_forced(): void {
		$this->transport->always( 0 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$this->queue->drain(); // second failure: due in 30 s
		$requests = count( $this->transport->requests );

		$this->transport->always( 201 );
		$this->assertSame( array( 'done' => 0, 'queued' => 0, 'dropped' => 0 ), $this->queue->drain() );
		$this->assertCount( $requests, $this->transport->requests );
		$this->assertSame( array( 'done' => 1, 'queued' => 0, 'dropped' => 0 ), $this->queue->drain( true ) );
		$this->assertSame( array(), $this->queue->entries() );
		$this->assertNull( $this->queue->next_due() );
	}

	public function test_the_newest_operation_on_a_domain_wins(): void {
		$this->transport->always( 503, '{"error":"Kubernetes API server unreachable"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'shop.example.com' ) );
		$this->queue->attempt( Closte_Operator_Queue::site( 2, array( 'x.example.com' ) ) );
		$this->queue->attempt( Closte_Operator_Queue::site( 2, array() ) );
		$this->assertSame(
			array(
				'domain:shop.example.com' => array( 'delete', 1, 0 ),
				'site:2'                  => array( 'site', 1, 0 ),
			),
			$this->queued()
		);
		$this->assertSame( array(), $this->queue->entries()['site:2']['domains'] );
		$this->assertSame( 'HTTP 503: Kubernetes API server unreachable', $this->queue->entries()['site:2']['error'] );

		$this->transport->always( 204, '' );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'shop.example.com' ) );
		$this->assertSame( array( 'site:2' ), array_keys( $this->queue->entries() ) );
	}

	public function test_a_refusal_that_a_retry_cannot_fix_is_dropped_and_recorded(): void {
		$this->transport->always( 400, '{"error":"domain may contain only a-z, 0-9"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'bad_domain.example.com', 2 ) );
		$this->transport->always( 404, '{"error":"no such path"}' );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'gone.example.com' ) );

		$this->assertSame( array(), $this->queue->entries() );
		$failures = $this->queue->failures();
		$this->assertSame( array( 'gone.example.com', 'bad_domain.example.com' ), array_column( $failures, 'domain' ), 'newest first' );
		$this->assertSame( 'HTTP 400: domain may contain only a-z, 0-9', $failures[1]['error'] );
		$this->assertSame( $this->now, $failures[0]['time'] );

		$this->transport->always( 400 );
		for ( $i = 0; $i < Closte_Operator_Queue::FAILURES_KEPT + 5; $i++ ) {
			$this->queue->attempt( Closte_Operator_Queue::put( "d$i.example.com", 4 ) );
		}
		$this->assertCount( Closte_Operator_Queue::FAILURES_KEPT, $this->queue->failures() );
	}

	public function test_a_conflict_is_kept_until_the_other_claim_goes(): void {
		$this->transport->always( 409, '{"error":"shop.example.com is being deleted; try again when it is gone"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$this->assertSame( array( 'domain:shop.example.com' => array( 'put', 1, 0 ) ), $this->queued() );
		$this->assertSame( 'HTTP 409: shop.example.com is being deleted; try again when it is gone', $this->queue->entries()['domain:shop.example.com']['error'] );

		$this->transport->always( 201 );
		$this->assertSame( array( 'done' => 1, 'queued' => 0, 'dropped' => 0 ), $this->queue->drain() );
		$this->assertSame( array(), $this->queue->failures() );
	}

	public function test_a_refused_token_is_kept_for_when_a_person_fixes_it(): void {
		$this->transport->always( 401, '{"error":"missing or wrong bearer token"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$this->assertSame( array( 'domain:shop.example.com' => array( 'put', 1, 0 ) ), $this->queued() );
		$this->assertFalse( $this->queue->is_down(), 'the sidecar answered' );
	}

	public function test_once_the_sidecar_proves_unreachable_the_rest_waits(): void {
		$this->transport->always( 503 );
		foreach ( array( 'a', 'b', 'c' ) as $name ) {
			$this->queue->attempt( Closte_Operator_Queue::put( "$name.example.com", null ) );
		}
		$this->transport->requests = array();
		$this->transport->always( 0 );

		$this->assertSame( array( 'done' => 0, 'queued' => 3, 'dropped' => 0 ), $this->queue->drain() );
		$this->assertCount( 1, $this->transport->requests, 'one timeout per round, not one per entry' );
		$this->assertSame( array( 2, 2, 2 ), array_column( $this->queued(), 1 ) );
		$this->assertSame( array( 30, 30, 30 ), array_column( $this->queued(), 2 ) );
		$this->assertStringContainsString( 'not tried', $this->queue->entries()['domain:b.example.com']['error'] );
	}

	public function test_the_breaker_queues_without_trying_and_a_retry_closes_it(): void {
		$this->transport->always( 0 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->assertTrue( $this->queue->is_down() );
		$this->assertNull( $this->queue->attempt( Closte_Operator_Queue::put( 'b.example.com', 3 ) ) );
		$this->assertCount( 1, $this->transport->requests );
		$this->assertSame( $this->now, $this->queue->last_unreachable()['time'] );

		$this->transport->always( 201 );
		$this->assertSame( array( 'done' => 2, 'queued' => 0, 'dropped' => 0 ), $this->queue->drain(), 'retries ignore the breaker' );
		$this->assertFalse( $this->queue->is_down() );
		$this->assertNull( $this->queue->last_unreachable() );
	}

	public function test_every_change_that_leaves_entries_reports_the_next_due_time(): void {
		$this->transport->always( 0 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->queue->drain();
		$this->assertSame( array( $this->now, $this->now + 30 ), $this->scheduled );
		$this->assertSame( $this->now + 30, $this->queue->next_due() );
	}

	public function test_delay(): void {
		$this->assertSame( 0, Closte_Operator_Queue::delay( 1 ) );
		$this->assertSame( 30, Closte_Operator_Queue::delay( 2 ) );
		$this->assertSame( 3600, Closte_Operator_Queue::delay( 1000 ) );
	}
}
