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

	public function test_writing_an_entry_costs_one_row_whatever_the_queue_holds(): void {
		$this->transport->always( 0 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'first.example.com', null ) );
		$this->assertTrue( $this->queue->is_down() );
		$options = $this->store->values;

		$costs = array();
		for ( $i = 0; $i < 500; $i++ ) {
			$this->rows->writes = array();
			$this->assertNull( $this->queue->attempt( Closte_Operator_Queue::put( sprintf( 'd%03d.example.com', $i ), 7 ) ) );
			$this->assertCount( 1, $this->rows->writes, "entry $i: one row written" );
			$costs[] = $this->rows->writes[0];
		}
		$this->assertSame( 'put domain:d000.example.com ' . substr( $costs[0], strrpos( $costs[0], ' ' ) + 1 ), $costs[0] );
		$this->assertSame( substr( $costs[0], strrpos( $costs[0], ' ' ) ), substr( $costs[499], strrpos( $costs[499], ' ' ) ), 'the 500th entry costs what the first did' );
		$this->assertSame( $options, $this->store->values, 'no option rewritten per entry' );
		$this->assertSame( array( $this->now ), array_unique( $this->scheduled ), 'each write reports its own due time, no scan' );
		$this->assertCount( 501, $this->queue->entries() );

		// A retry round writes each entry once: one timeout, then one row per entry.
		$this->rows->writes = array();
		$this->queue->drain();
		$this->assertCount( 501, $this->rows->writes );
		$this->assertSame( array( 'replace' ), array_unique( array_map( fn( $w ) => strtok( $w, ' ' ), $this->rows->writes ) ) );
	}

	public function test_the_queue_is_bounded_and_a_change_that_does_not_fit_is_rejected(): void {
		$this->transport->always( 0 );
		for ( $i = 0; $i < Closte_Operator_Queue::MAX_ENTRIES; $i++ ) {
			$this->queue->attempt( Closte_Operator_Queue::put( "d$i.example.com", null ) );
		}
		$this->assertCount( Closte_Operator_Queue::MAX_ENTRIES, $this->queue->entries() );

		$this->assertNull( $this->queue->attempt( Closte_Operator_Queue::delete( 'one-more.example.com' ) ) );
		$this->assertCount( Closte_Operator_Queue::MAX_ENTRIES, $this->queue->entries() );
		$this->assertArrayNotHasKey( 'domain:one-more.example.com', $this->queue->entries() );
		$rejected = $this->queue->failures()[0];
		$this->assertSame( array( 'delete', 'one-more.example.com' ), array( $rejected['op'], $rejected['domain'] ) );
		$this->assertStringContainsString( 'not queued: the queue is full (1000 changes waiting)', $rejected['error'] );

		// A newer change of a queued domain still replaces its entry.
		$this->queue->attempt( Closte_Operator_Queue::delete( 'd5.example.com' ) );
		$this->assertSame( 'delete', $this->queue->entries()['domain:d5.example.com']['op'] );
		$this->assertCount( 1, $this->queue->failures() );
	}

	public function test_an_entry_failing_longer_than_the_maximum_age_is_rejected_with_its_reason(): void {
		$this->transport->always( 503, '{"error":"Kubernetes API server unreachable"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'old.example.com', 3 ) );
		$this->queue->attempt( Closte_Operator_Queue::put( 'new.example.com', 4 ) );
		$start = $this->now;
		while ( $this->now < $start + Closte_Operator_Queue::MAX_AGE - 3600 ) {
			$this->now += 3600;
			$this->queue->drain();
			$this->queue->attempt( Closte_Operator_Queue::put( 'new.example.com', 4 ) ); // changed again: young again
		}
		$this->assertCount( 2, $this->queue->entries() );
		$requests = count( $this->transport->requests );

		$this->now = $start + Closte_Operator_Queue::MAX_AGE;
		$this->assertSame( array( 'done' => 0, 'queued' => 1, 'dropped' => 1 ), $this->queue->drain( true ) );
		$this->assertSame( array( 'domain:new.example.com' ), array_keys( $this->queue->entries() ) );
		$this->assertCount( $requests + 1, $this->transport->requests, 'the old one is not tried again' );
		$rejected = $this->queue->failures();
		$this->assertCount( 1, $rejected );
		$this->assertSame( array( 'put', 'old.example.com', 3 ), array( $rejected[0]['op'], $rejected[0]['domain'], $rejected[0]['site'] ) );
		$this->assertStringStartsWith( 'gave up: still failing after 7 days (', $rejected[0]['error'] );
		$this->assertStringEndsWith( 'last error: HTTP 503: Kubernetes API server unreachable', $rejected[0]['error'] );
		$this->assertSame( $this->now, $rejected[0]['time'] );
	}

	public function test_a_conflict_is_retried_a_bounded_number_of_times_then_rejected(): void {
		$this->transport->always( 409, '{"error":"shop.example.com belongs to another site"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		for ( $i = 0; $i < 50 && array() !== $this->queue->entries(); $i++ ) {
			$this->now = (int) $this->queue->next_due();
			$this->queue->drain();
		}
		$this->assertSame( array(), $this->queue->entries() );
		$this->assertCount( Closte_Operator_Queue::CONFLICT_ATTEMPTS, $this->transport->requests );
		$this->assertLessThan( Closte_Operator_Queue::MAX_AGE, $this->now - 1700000000, 'given up for the conflicts, not for its age' );
		$rejected = $this->queue->failures();
		$this->assertCount( 1, $rejected );
		$this->assertSame( 'shop.example.com', $rejected[0]['domain'] );
		$this->assertSame( Closte_Operator_Queue::CONFLICT_ATTEMPTS, $rejected[0]['attempts'] );
		$this->assertSame(
			'gave up after 10 conflicts: the domain is held by another site / still being deleted (HTTP 409: shop.example.com belongs to another site)',
			$rejected[0]['error']
		);
	}

	public function test_other_failures_between_conflicts_do_not_count_as_conflicts(): void {
		$this->transport->always( 409 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$this->transport->answer = fn() => new Closte_Operator_Result( count( $this->transport->requests ) % 2 ? 409 : 503 );
		for ( $i = 0; $i < 2 * Closte_Operator_Queue::CONFLICT_ATTEMPTS - 3; $i++ ) {
			$this->queue->drain( true );
		}
		$this->assertSame( Closte_Operator_Queue::CONFLICT_ATTEMPTS - 1, $this->queue->entries()['domain:shop.example.com']['conflicts'] );
		$this->assertSame( array(), $this->queue->failures() );
	}

	public function test_a_retry_never_undoes_an_entry_another_request_wrote_meanwhile(): void {
		$this->transport->always( 503 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->queue->attempt( Closte_Operator_Queue::put( 'b.example.com', 3 ) );

		// While the retry of a.example.com is on its way, another request
		// queues a delete of it; the retry succeeds, then fails for b.
		$this->transport->answer = function ( $request ) {
			if ( str_ends_with( $request['url'], '/a.example.com' ) ) {
				$this->rows->put( 'domain:a.example.com', Closte_Operator_Queue::delete( 'a.example.com' ) + array( 'attempts' => 1, 'conflicts' => 0, 'next' => $this->now, 'error' => 'x', 'since' => $this->now ) );
				return new Closte_Operator_Result( 201 );
			}
			$this->rows->put( 'domain:b.example.com', Closte_Operator_Queue::delete( 'b.example.com' ) + array( 'attempts' => 1, 'conflicts' => 0, 'next' => $this->now, 'error' => 'x', 'since' => $this->now ) );
			return new Closte_Operator_Result( 503 );
		};
		$this->queue->drain( true );
		$this->assertSame(
			array(
				'domain:a.example.com' => array( 'delete', 1, 0 ),
				'domain:b.example.com' => array( 'delete', 1, 0 ),
			),
			$this->queued(),
			'the newer entries stand'
		);

		// Two requests (two queues over the same rows) queueing at once.
		$other = new Closte_Operator_Queue( $this->sidecar, $this->store, $this->rows, fn() => $this->now );
		$this->transport->always( 0 );
		for ( $i = 0; $i < 20; $i++ ) {
			$this->queue->attempt( Closte_Operator_Queue::delete( "x$i.example.com" ) );
			$other->attempt( Closte_Operator_Queue::delete( "y$i.example.com" ) );
		}
		$this->assertCount( 42, $this->queue->entries() );
	}

	public function test_delay(): void {
		$this->assertSame( 0, Closte_Operator_Queue::delay( 1 ) );
		$this->assertSame( 30, Closte_Operator_Queue::delay( 2 ) );
		$this->assertSame( 3600, Closte_Operator_Queue::delay( 1000 ) );
	}

	public function test_every_write_carries_the_check_interval_when_wordpress_sets_one(): void {
		$interval = 45;
		$sidecar  = new Closte_Operator_Sidecar( $this->transport, new Closte_Operator_Config( self::SIDECAR, self::TOKEN, 2.0, '', self::PLACEHOLDER ), function () use ( &$interval ) {
			return $interval;
		} );
		$queue    = new Closte_Operator_Queue( $sidecar, $this->store, $this->rows, fn() => $this->now );
		$queue->attempt( Closte_Operator_Queue::put( 'shop.example.com', 2 ) );
		$queue->attempt( Closte_Operator_Queue::put( 'door.example.com', null ) );
		$queue->attempt( Closte_Operator_Queue::site( 7, array( 'a.example.com' ) ) );
		$sidecar->closte( 'POST', 'adddomainalias', '', 'apikey=x&domain=c.example.com', array(), 45.0 );
		$interval = null;
		$queue->attempt( Closte_Operator_Queue::put( 'later.example.com', 3 ) );
		$sidecar->closte( 'POST', 'adddomainalias', '', 'apikey=x&domain=d.example.com', array(), 45.0 );

		list( $put, $door, $site, $closte, $default, $closte_default ) = $this->transport->requests;
		$this->assertSame( '{"siteId":2,"checkInterval":"45s"}', $put['body'] );
		$this->assertSame( '{"checkInterval":"45s"}', $door['body'] );
		$this->assertSame( '{"domains":["a.example.com"],"checkInterval":"45s"}', $site['body'] );
		$this->assertSame( '45s', $closte['headers'][ Closte_Operator_Sidecar::INTERVAL_HEADER ] );
		$this->assertSame( '{"siteId":3}', $default['body'], 'no interval set: the sidecar\'s default' );
		$this->assertArrayNotHasKey( Closte_Operator_Sidecar::INTERVAL_HEADER, $closte_default['headers'] );
	}

	public function test_writes_wait_longer_than_reads(): void {
		$this->queue->attempt( Closte_Operator_Queue::site( 7, array( 'a.example.com' ) ) );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'a.example.com' ) );
		$this->sidecar->domains();
		$this->assertSame( array( Closte_Operator_Config::DEFAULT_WRITE_TIMEOUT, Closte_Operator_Config::DEFAULT_WRITE_TIMEOUT, 2.0 ), array_column( $this->transport->requests, 'timeout' ) );
	}

	public function test_a_slow_answer_keeps_the_change_but_does_not_open_the_breaker(): void {
		$this->transport->answer = fn() => Closte_Operator_Result::timed_out( 'cURL error 28: Operation timed out after 15001 milliseconds with 0 bytes received' );
		$result                  = $this->queue->attempt( Closte_Operator_Queue::site( 7, array( 'a.example.com' ) ) );
		$this->assertTrue( $result->timed_out );
		$this->assertStringStartsWith( 'no answer from the sidecar in time', $result->message() );
		$this->assertFalse( $this->queue->is_down(), 'a slow sidecar is not a dead one' );
		$this->assertSame( array( 'site:7' => array( 'site', 1, 0 ) ), $this->queued() );

		// A drain goes on after a slow answer (it stops only at an unreachable one).
		$this->queue->attempt( Closte_Operator_Queue::site( 8, array( 'b.example.com' ) ) );
		$this->transport->requests = array();
		$this->queue->drain( true );
		$this->assertSame( array( 'PUT /v1/sites/7/domains', 'PUT /v1/sites/8/domains' ), $this->transport->lines() );
	}

	public function test_the_transport_tells_a_slow_sidecar_from_a_missing_one(): void {
		$this->assertTrue( Closte_Operator_WP_Transport::failure( 'cURL error 28: Operation timed out after 15001 milliseconds with 0 bytes received' )->timed_out );
		$this->assertFalse( Closte_Operator_WP_Transport::failure( 'cURL error 28: Connection timed out after 2001 milliseconds' )->timed_out );
		$this->assertFalse( Closte_Operator_WP_Transport::failure( 'cURL error 7: Failed to connect to 127.0.0.1 port 8087: Connection refused' )->timed_out );
	}

	public function test_a_drain_stops_at_its_deadline(): void {
		$this->transport->always( 503 );
		foreach ( array( 'a', 'b', 'c' ) as $name ) {
			$this->queue->attempt( Closte_Operator_Queue::delete( $name . '.example.com' ) );
		}
		$this->transport->requests = array();
		$this->transport->answer   = function () {
			$this->now += 5;
			return new Closte_Operator_Result( 204 );
		};
		$summary = $this->queue->drain( true, $this->now + 8 );
		$this->assertSame( 2, $summary['done'], 'the third waits for the retry event' );
		$this->assertCount( 1, $this->queue->entries() );
	}

	public function test_retry_now_discard_and_clear_rejected(): void {
		$this->transport->always( 503 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->queue->attempt( Closte_Operator_Queue::put( 'b.example.com', 3 ) );
		$this->transport->always( 400, '{"error":"invalid"}' );
		$this->queue->attempt( Closte_Operator_Queue::put( 'bad.example.com', 4 ) );
		$this->assertCount( 1, $this->queue->failures() );

		$this->transport->always( 200 );
		$this->transport->requests = array();
		$this->assertTrue( $this->queue->retry_now( 'domain:a.example.com' )->ok() );
		$this->assertSame( array( 'PUT /v1/domains/a.example.com' ), $this->transport->lines(), 'sent at once, backoff or not' );
		$this->assertNull( $this->queue->retry_now( 'domain:a.example.com' ), 'done, so no longer waiting' );
		$this->assertSame( array( 'domain:b.example.com' ), array_keys( $this->queue->entries() ) );

		$this->assertTrue( $this->queue->discard( 'domain:b.example.com' ) );
		$this->assertFalse( $this->queue->discard( 'domain:b.example.com' ) );
		$this->assertSame( array(), $this->queue->entries() );
		$this->assertCount( 1, $this->transport->requests, 'a discarded change is never sent' );

		$this->assertSame( 1, $this->queue->clear_rejected() );
		$this->assertSame( array(), $this->queue->failures() );
	}

	public function test_a_retry_that_fails_again_stays_queued_with_one_more_attempt(): void {
		$this->transport->always( 503 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->assertNotNull( $this->queue->retry_now( 'domain:a.example.com' ) );
		$this->assertSame( array( 'domain:a.example.com' => array( 'put', 2, Closte_Operator_Queue::FIRST_DELAY ) ), $this->queued() );
	}
}

